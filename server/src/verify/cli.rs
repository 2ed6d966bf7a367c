//! `flexwork verify`: checks photo files and a GPX track from the command line, with the same
//! [`verify`] the server runs.
//!
//! Every option may be left out; the checks that need it are then listed as skipped in the
//! report. A file on disk carries no phone location fix, so the phone-fix checks are always
//! skipped and photos are placed by their EXIF GPS position alone.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{
    Context, Evidence, PhotoInput, Report, Requirements, Site, Thresholds, TrackPoint, Window,
    track_from_gpx, verify,
};

/// Options of `flexwork verify`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct VerifyArgs {
    /// A photo to check (JPEG, PNG, WebP, GIF or TIFF); repeat for several. Its id in the
    /// report is the file name.
    #[arg(long = "photo", value_name = "FILE")]
    pub photos: Vec<PathBuf>,

    /// A GPS trajectory to check, as GPX.
    #[arg(long, value_name = "FILE")]
    pub track: Option<PathBuf>,

    /// The work site as WGS-84 "LAT,LON" in degrees, for example "43.4674,11.8851".
    #[arg(long, value_name = "LAT,LON", value_parser = parse_position, allow_hyphen_values = true)]
    pub site: Option<(f64, f64)>,

    /// Geofence radius around the site in metres [default: the thresholds' default radius,
    /// 150 m].
    #[arg(long, value_name = "METRES", requires = "site")]
    pub radius: Option<f64>,

    /// Start of the work window (RFC 3339, for example 2008-10-22T08:00:00+02:00).
    #[arg(long, value_name = "TIME", value_parser = parse_time, requires = "to")]
    pub from: Option<OffsetDateTime>,

    /// End of the work window (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time, requires = "from")]
    pub to: Option<OffsetDateTime>,

    /// Fewest photos that must decode; giving it (or --require-track) turns on the
    /// requirement checks. Signatures cannot be given here and are never required.
    #[arg(long, value_name = "N")]
    pub min_photos: Option<u32>,

    /// Require a trajectory.
    #[arg(long)]
    pub require_track: bool,

    /// A TOML file with the thresholds: either the server configuration (its
    /// `[verification]` table is used) or a file holding only the thresholds.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Reads the files named in `args` and verifies them.
///
/// Fails only when a file cannot be read, the configuration is not valid TOML for the
/// thresholds, or the track is not valid GPX; a photo that is not an image is a finding.
pub fn run(args: &VerifyArgs) -> anyhow::Result<Report> {
    let thresholds = load_thresholds(args.config.as_deref())?;
    let files = read_photos(&args.photos)?;
    let track = read_track(args.track.as_deref())?;

    let photos = files
        .iter()
        .map(|(id, bytes)| PhotoInput {
            id: id.clone(),
            bytes,
            fix: None,
        })
        .collect();
    let evidence = Evidence {
        photos,
        track,
        signature_count: 0,
    };
    let ctx = context(args, &thresholds)?;

    Ok(verify(&evidence, &ctx, &[], &thresholds))
}

fn context(args: &VerifyArgs, thresholds: &Thresholds) -> anyhow::Result<Context> {
    let radius_m = args.radius.unwrap_or(thresholds.default_radius_m);
    // The same range the server accepts for a task's site.
    if !(radius_m.is_finite() && (10.0..=50_000.0).contains(&radius_m)) {
        bail!("--radius must be 10 to 50,000 metres, as for a task's site; got {radius_m}");
    }
    let site = args.site.map(|(lat, lon)| Site { lat, lon, radius_m });

    let window = match (args.from, args.to) {
        (Some(from), Some(to)) if from >= to => bail!("--to must be later than --from"),
        (Some(from), Some(to)) => Some(Window { from, to }),
        _ => None,
    };
    let requirements = (args.min_photos.is_some() || args.require_track).then(|| Requirements {
        min_photos: args.min_photos.unwrap_or(0),
        track: args.require_track,
        signature: false,
    });

    Ok(Context {
        site,
        window,
        requirements,
    })
}

fn load_thresholds(path: Option<&Path>) -> anyhow::Result<Thresholds> {
    let Some(path) = path else {
        return Ok(Thresholds::default());
    };

    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration {}", path.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let thresholds = match table.remove("verification") {
        Some(section) => section.try_into(),
        None => toml::Value::Table(table).try_into(),
    };

    thresholds.with_context(|| format!("invalid thresholds in {}", path.display()))
}

fn read_photos(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let read = |path: &PathBuf| {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the photo {}", path.display()))?;
        let id = path.file_name().map_or_else(
            || path.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        );

        Ok((id, bytes))
    };
    paths.iter().map(read).collect()
}

fn read_track(path: Option<&Path>) -> anyhow::Result<Vec<TrackPoint>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };

    let file =
        File::open(path).with_context(|| format!("cannot read the track {}", path.display()))?;
    track_from_gpx(BufReader::new(file))
        .with_context(|| format!("cannot read the track {} as GPX", path.display()))
}

/// "LAT,LON" in degrees → a valid WGS-84 position.
fn parse_position(text: &str) -> Result<(f64, f64), String> {
    let parse = |part: Option<&str>| part.and_then(|p| p.trim().parse::<f64>().ok());
    let mut parts = text.split(',');

    let (Some(lat), Some(lon), None) = (parse(parts.next()), parse(parts.next()), parts.next())
    else {
        return Err(format!("expected LAT,LON in degrees, got {text:?}"));
    };
    if !super::geo::is_valid_position(lat, lon) {
        return Err(format!(
            "{lat},{lon} is not a position (latitude ±90, longitude ±180)"
        ));
    }

    Ok((lat, lon))
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| format!("expected RFC 3339 time: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse() {
        assert_eq!(parse_position("43.4674, 11.8851"), Ok((43.4674, 11.8851)));
        assert_eq!(parse_position("-33.9,18.4"), Ok((-33.9, 18.4)));
        assert!(parse_position("43.4").is_err());
        assert!(parse_position("91,0").is_err());
        assert!(parse_position("1,2,3").is_err());
    }

    #[test]
    fn clap_accepts_the_documented_options() {
        use clap::Parser;

        #[derive(Parser, Debug)]
        struct Cli {
            #[command(flatten)]
            verify: VerifyArgs,
        }

        let cli = Cli::try_parse_from([
            "flexwork",
            "--photo",
            "a.jpg",
            "--photo",
            "b.jpg",
            "--site",
            "43.46,11.88",
            "--from",
            "2008-10-22T08:00:00Z",
            "--to",
            "2008-10-22T20:00:00Z",
        ])
        .unwrap();
        assert_eq!(cli.verify.photos.len(), 2);
        assert_eq!(cli.verify.site, Some((43.46, 11.88)));
        assert!(cli.verify.radius.is_none());

        assert!(Cli::try_parse_from(["flexwork", "--radius", "100"]).is_err());
        assert!(Cli::try_parse_from(["flexwork", "--from", "2008-10-22T08:00:00Z"]).is_err());
    }

    #[test]
    fn a_site_or_window_the_server_would_refuse_is_refused_here_too() {
        let zero_radius = VerifyArgs {
            site: Some((43.46, 11.88)),
            radius: Some(0.0),
            ..VerifyArgs::default()
        };
        let at = time::macros::datetime!(2008-10-22 08:00 UTC);
        let empty_window = VerifyArgs {
            from: Some(at),
            to: Some(at),
            ..VerifyArgs::default()
        };

        assert!(
            run(&zero_radius)
                .unwrap_err()
                .to_string()
                .contains("--radius")
        );
        assert!(run(&empty_window).unwrap_err().to_string().contains("--to"));
    }

    #[test]
    fn nothing_given_skips_and_says_so() {
        let report = run(&VerifyArgs::default()).unwrap();

        for check in [
            "geofence",
            "work_window",
            "requirements",
            "track",
            "photo_reuse",
        ] {
            assert!(
                report.skipped(check),
                "{check} not skipped: {:?}",
                report.skipped
            );
        }
        assert!(report.photos.is_empty());
        assert!(report.track.is_none());
    }
}
