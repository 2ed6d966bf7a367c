//! Storage sites and the distance rules that make their copies a real backup.
//!
//! A *site* is one place that keeps a copy of the evidence media: a named [`StoreConfig`]
//! (a local folder or an S3 bucket) together with who runs it (its `provider`) and where it
//! physically is (its `latitude` and `longitude`, in degrees). The first site listed is the
//! *primary*, the one uploads are written to first; the others hold copies.
//!
//! # The rules
//!
//! The backup standard the platform follows (clause 6.1 e 6) asks for copies in at least
//! two places, at least two of them more than 200 km apart, better more than 600 km, and
//! preferably with different providers, so that one flood, fire, power cut or provider
//! failure cannot take every copy. [`plan_sites`] checks a list of sites against those
//! numbers, which live in [`SiteRules`] rather than in the code:
//!
//! - every site needs a non-empty name unique among the sites (compared without regard to
//!   case), a non-empty provider, and finite coordinates within ±90° latitude and ±180°
//!   longitude; an S3 store carries its site's name;
//! - distances are great-circle distances on a sphere of the Earth's mean radius (the
//!   haversine formula), which is within about 0.5 % of the distance along the ellipsoid;
//! - when redundancy is required, fewer than two sites, or no pair more than
//!   [`SiteRules::min_separation_km`] apart, is an error; a farthest pair closer than
//!   [`SiteRules::preferred_separation_km`], or a single provider for every site, is a
//!   warning;
//! - when redundancy is not required (a laptop or a test server), the same shortfalls are
//!   only warnings, and a single site is accepted with the warning
//!   "no redundancy: media are kept at one site only".
//!
//! # Configuration
//!
//! A site is written as a flat table: the store's fields sit beside the site's, and the
//! store's `kind` says which backend it is. An S3 store takes its name from the site, so the
//! name is written once:
//!
//! ```toml
//! [[sites]]
//! name = "shanghai-1"
//! provider = "aliyun"
//! latitude = 31.23
//! longitude = 121.47
//! kind = "s3"
//! endpoint = "https://oss-cn-shanghai.aliyuncs.com"
//! region = "cn-shanghai"
//! bucket = "evidence"
//! access_key_id = "flexwork"
//! secret_access_key = "..."
//! ```

use std::fmt;
use std::path::PathBuf;

use geo::{Distance, Haversine, Point};
use serde::{Deserialize, Serialize};

use crate::StoreConfig;

/// The warning given when media are kept at one site only.
pub const NO_REDUNDANCY: &str = "no redundancy: media are kept at one site only";

/// One place that keeps a copy of the media: a store, who runs it and where it is.
///
/// Serialized as one flat table (see the [module documentation](self)); `Debug` never shows
/// the store's secret key.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "SiteFile", into = "SiteFile")]
pub struct SiteConfig {
    /// The site's label, such as `"shanghai-1"`; also the name of its S3 store.
    pub name: String,
    /// Who runs the site's storage, such as `"aliyun"` or `"own-rack"`.
    pub provider: String,
    /// Latitude in degrees, north positive.
    pub latitude: f64,
    /// Longitude in degrees, east positive.
    pub longitude: f64,
    /// The store kept at this site; its fields sit beside the site's in the configuration.
    pub store: StoreConfig,
}

impl fmt::Debug for SiteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteConfig")
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("latitude", &self.latitude)
            .field("longitude", &self.longitude)
            .field("store", &self.store)
            .finish()
    }
}

/// The thresholds of the distance rules, in kilometres.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SiteRules {
    /// Some pair of sites must be farther apart than this: 200 km in the standard.
    pub min_separation_km: f64,
    /// The farthest pair should be farther apart than this: 600 km in the standard.
    pub preferred_separation_km: f64,
}

impl Default for SiteRules {
    fn default() -> Self {
        Self {
            min_separation_km: 200.0,
            preferred_separation_km: 600.0,
        }
    }
}

/// The great-circle distance between two sites.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteDistance {
    /// The name of the site listed first.
    pub from: String,
    /// The name of the site listed later.
    pub to: String,
    /// The distance in kilometres.
    pub km: f64,
}

/// The outcome of checking a list of sites: which is primary, how far apart they are, and
/// what falls short of the standard without being refused.
#[derive(Clone, Debug, PartialEq)]
pub struct SitePlan {
    /// The name of the first site, which uploads are written to first.
    pub primary: String,
    /// The distance of every pair of sites, in the order the sites are listed.
    pub distances: Vec<SiteDistance>,
    /// Shortfalls a person should know about, in plain words.
    pub warnings: Vec<String>,
}

/// Why a list of sites was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SiteError {
    /// The list is empty.
    #[error("no storage site is configured")]
    NoSites,
    /// A site's name is empty or blank.
    #[error("site number {position} has no name")]
    EmptyName {
        /// The site's position in the list, counting from 1.
        position: usize,
    },
    /// Two sites share a name.
    #[error("two sites are named {name:?}; each site needs its own name")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// A site's provider is empty or blank.
    #[error("site {site:?} does not say which provider runs it")]
    EmptyProvider {
        /// The site's name.
        site: String,
    },
    /// A site's coordinates are not a point on Earth.
    #[error(
        "site {site:?} has invalid coordinates ({latitude}, {longitude}): latitude must be \
         between -90 and 90 degrees and longitude between -180 and 180"
    )]
    InvalidCoordinates {
        /// The site's name.
        site: String,
        /// The latitude given.
        latitude: f64,
        /// The longitude given.
        longitude: f64,
    },
    /// An S3 store is named differently from its site.
    #[error("site {site:?} has an s3 store named {store:?}; the store must carry its site's name")]
    StoreNameMismatch {
        /// The site's name.
        site: String,
        /// The store's name.
        store: String,
    },
    /// Redundancy is required but fewer than two sites are configured.
    #[error("redundancy needs at least two sites, but only one is configured")]
    TooFewSites,
    /// Redundancy is required but every pair of sites is too close.
    #[error("no two sites are more than {min_km} km apart (farthest: {from}–{to}, {km:.0} km)")]
    TooClose {
        /// The separation some pair must exceed.
        min_km: f64,
        /// The first site of the farthest pair.
        from: String,
        /// The second site of the farthest pair.
        to: String,
        /// The farthest pair's distance.
        km: f64,
    },
}

/// Checks `sites` against the standard's default rules; see [`plan_sites_with`].
pub fn plan_sites(sites: &[SiteConfig], require_redundancy: bool) -> Result<SitePlan, SiteError> {
    plan_sites_with(sites, require_redundancy, &SiteRules::default())
}

/// Checks `sites` against `rules` and measures every pair.
///
/// Invalid sites are always refused. With `require_redundancy`, too few sites or sites too
/// close together are refused as well; without it they only give warnings.
pub fn plan_sites_with(
    sites: &[SiteConfig],
    require_redundancy: bool,
    rules: &SiteRules,
) -> Result<SitePlan, SiteError> {
    validate_sites(sites)?;
    let primary = sites.first().ok_or(SiteError::NoSites)?.name.clone();
    let distances = pair_distances(sites);
    let mut warnings = Vec::new();

    match farthest(&distances) {
        None if require_redundancy => return Err(SiteError::TooFewSites),
        None => warnings.push(NO_REDUNDANCY.to_owned()),
        Some(far) => {
            check_separation(far, require_redundancy, rules, &mut warnings)?;
            warnings.extend(provider_warning(sites));
        }
    }

    Ok(SitePlan {
        primary,
        distances,
        warnings,
    })
}

/// The great-circle distance between two sites, in kilometres.
pub fn distance_km(a: &SiteConfig, b: &SiteConfig) -> f64 {
    Haversine.distance(a.point(), b.point()) / 1000.0
}

impl SiteConfig {
    /// The site as a point, longitude first as `geo` expects.
    fn point(&self) -> Point<f64> {
        Point::new(self.longitude, self.latitude)
    }

    /// Refuses a site whose provider, coordinates or store name are unusable.
    fn validate(&self) -> Result<(), SiteError> {
        if self.provider.trim().is_empty() {
            return Err(SiteError::EmptyProvider {
                site: self.name.clone(),
            });
        }
        if !valid_coordinates(self.latitude, self.longitude) {
            return Err(SiteError::InvalidCoordinates {
                site: self.name.clone(),
                latitude: self.latitude,
                longitude: self.longitude,
            });
        }
        match &self.store {
            StoreConfig::S3 { name, .. } if *name != self.name => {
                Err(SiteError::StoreNameMismatch {
                    site: self.name.clone(),
                    store: name.clone(),
                })
            }
            _ => Ok(()),
        }
    }
}

fn valid_coordinates(latitude: f64, longitude: f64) -> bool {
    latitude.is_finite()
        && longitude.is_finite()
        && (-90.0..=90.0).contains(&latitude)
        && (-180.0..=180.0).contains(&longitude)
}

/// Refuses blank or repeated names, then checks each site on its own.
fn validate_sites(sites: &[SiteConfig]) -> Result<(), SiteError> {
    let mut seen = std::collections::HashSet::new();
    for (index, site) in sites.iter().enumerate() {
        if site.name.trim().is_empty() {
            return Err(SiteError::EmptyName {
                position: index + 1,
            });
        }
        if !seen.insert(site.name.to_lowercase()) {
            return Err(SiteError::DuplicateName {
                name: site.name.clone(),
            });
        }
        site.validate()?;
    }

    Ok(())
}

fn pair_distances(sites: &[SiteConfig]) -> Vec<SiteDistance> {
    let mut distances = Vec::new();
    for (index, a) in sites.iter().enumerate() {
        for b in &sites[index + 1..] {
            distances.push(SiteDistance {
                from: a.name.clone(),
                to: b.name.clone(),
                km: distance_km(a, b),
            });
        }
    }

    distances
}

fn farthest(distances: &[SiteDistance]) -> Option<&SiteDistance> {
    distances.iter().max_by(|a, b| a.km.total_cmp(&b.km))
}

/// Refuses (or, without required redundancy, warns about) a farthest pair that is too close,
/// and warns about one closer than preferred.
fn check_separation(
    far: &SiteDistance,
    require_redundancy: bool,
    rules: &SiteRules,
    warnings: &mut Vec<String>,
) -> Result<(), SiteError> {
    if far.km <= rules.min_separation_km {
        let error = SiteError::TooClose {
            min_km: rules.min_separation_km,
            from: far.from.clone(),
            to: far.to.clone(),
            km: far.km,
        };
        if require_redundancy {
            return Err(error);
        }
        warnings.push(error.to_string());
    } else if far.km < rules.preferred_separation_km {
        warnings.push(format!(
            "the farthest sites, {}–{}, are only {:.0} km apart; the standard prefers more \
             than {} km",
            far.from, far.to, far.km, rules.preferred_separation_km
        ));
    }

    Ok(())
}

/// A warning when every site has the same provider (compared without regard to case).
fn provider_warning(sites: &[SiteConfig]) -> Option<String> {
    let first = sites.first()?.provider.trim();
    let single = sites
        .iter()
        .all(|site| site.provider.trim().eq_ignore_ascii_case(first));

    single.then(|| {
        format!("all sites use one provider ({first}); the standard prefers different providers")
    })
}

/// A site as written in the configuration: an S3 store takes its name from the site, since
/// a flattened store cannot have a `name` field of its own beside the site's.
#[derive(Serialize, Deserialize)]
struct SiteFile {
    name: String,
    provider: String,
    latitude: f64,
    longitude: f64,
    #[serde(flatten)]
    store: StoreFile,
}

/// [`StoreConfig`] without the S3 store's name.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoreFile {
    Local {
        path: PathBuf,
    },
    S3 {
        endpoint: String,
        region: String,
        bucket: String,
        access_key_id: String,
        secret_access_key: String,
        #[serde(default)]
        path_style: bool,
        #[serde(default)]
        prefix: String,
    },
}

impl From<SiteFile> for SiteConfig {
    fn from(file: SiteFile) -> Self {
        let store = match file.store {
            StoreFile::Local { path } => StoreConfig::Local { path },
            StoreFile::S3 {
                endpoint,
                region,
                bucket,
                access_key_id,
                secret_access_key,
                path_style,
                prefix,
            } => StoreConfig::S3 {
                name: file.name.clone(),
                endpoint,
                region,
                bucket,
                access_key_id,
                secret_access_key,
                path_style,
                prefix,
            },
        };
        Self {
            name: file.name,
            provider: file.provider,
            latitude: file.latitude,
            longitude: file.longitude,
            store,
        }
    }
}

impl From<SiteConfig> for SiteFile {
    fn from(site: SiteConfig) -> Self {
        let store = match site.store {
            StoreConfig::Local { path } => StoreFile::Local { path },
            StoreConfig::S3 {
                name: _,
                endpoint,
                region,
                bucket,
                access_key_id,
                secret_access_key,
                path_style,
                prefix,
            } => StoreFile::S3 {
                endpoint,
                region,
                bucket,
                access_key_id,
                secret_access_key,
                path_style,
                prefix,
            },
        };
        Self {
            name: site.name,
            provider: site.provider,
            latitude: site.latitude,
            longitude: site.longitude,
            store,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    const SHANGHAI: (f64, f64) = (31.23, 121.47);
    const HANGZHOU: (f64, f64) = (30.27, 120.15);
    const BEIJING: (f64, f64) = (39.90, 116.40);
    const GUANGZHOU: (f64, f64) = (23.13, 113.26);
    const NANJING: (f64, f64) = (32.06, 118.80);
    const SECRET: &str = "wJalrXUtnFEMI-very-secret-key";

    fn site(name: &str, provider: &str, (latitude, longitude): (f64, f64)) -> SiteConfig {
        SiteConfig {
            name: name.into(),
            provider: provider.into(),
            latitude,
            longitude,
            store: StoreConfig::Local {
                path: format!("/srv/media/{name}").into(),
            },
        }
    }

    fn assert_km(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() < 5.0,
            "{actual} km, expected {expected} km"
        );
    }

    fn has_warning(plan: &SitePlan, part: &str) -> bool {
        plan.warnings.iter().any(|warning| warning.contains(part))
    }

    #[test]
    fn measures_known_city_pairs() {
        let shanghai = site("shanghai", "a", SHANGHAI);

        assert_km(
            distance_km(&shanghai, &site("hangzhou", "a", HANGZHOU)),
            165.0,
        );
        assert_km(
            distance_km(&shanghai, &site("beijing", "a", BEIJING)),
            1067.0,
        );
        assert_km(
            distance_km(&shanghai, &site("guangzhou", "a", GUANGZHOU)),
            1212.0,
        );
        assert_km(
            distance_km(&shanghai, &site("nanjing", "a", NANJING)),
            269.0,
        );
    }

    #[test]
    fn shanghai_and_hangzhou_alone_are_too_close() {
        let sites = [
            site("shanghai", "aliyun", SHANGHAI),
            site("hangzhou", "tencent", HANGZHOU),
        ];

        let error = plan_sites(&sites, true).unwrap_err();

        assert!(matches!(error, SiteError::TooClose { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "no two sites are more than 200 km apart (farthest: shanghai–hangzhou, 165 km)"
        );
    }

    #[test]
    fn too_close_without_required_redundancy_is_a_warning() {
        let sites = [
            site("shanghai", "aliyun", SHANGHAI),
            site("hangzhou", "tencent", HANGZHOU),
        ];

        let plan = plan_sites(&sites, false).unwrap();

        assert!(
            has_warning(&plan, "no two sites are more than 200 km apart"),
            "{plan:?}"
        );
    }

    #[test]
    fn shanghai_and_beijing_pass_without_a_distance_warning() {
        let sites = [
            site("shanghai", "aliyun", SHANGHAI),
            site("beijing", "tencent", BEIJING),
        ];

        let plan = plan_sites(&sites, true).unwrap();

        assert_eq!(plan.primary, "shanghai");
        assert_eq!(plan.distances.len(), 1);
        assert_eq!(
            (
                plan.distances[0].from.as_str(),
                plan.distances[0].to.as_str()
            ),
            ("shanghai", "beijing")
        );
        assert_km(plan.distances[0].km, 1067.0);
        assert!(plan.warnings.is_empty(), "{plan:?}");
    }

    #[test]
    fn a_pair_between_200_and_600_km_passes_with_a_warning() {
        let sites = [
            site("shanghai", "aliyun", SHANGHAI),
            site("nanjing", "tencent", NANJING),
        ];

        let plan = plan_sites(&sites, true).unwrap();

        assert_km(plan.distances[0].km, 269.0);
        assert_eq!(
            plan.warnings,
            [
                "the farthest sites, shanghai–nanjing, are only 269 km apart; the standard \
              prefers more than 600 km"
            ]
        );
    }

    #[test]
    fn one_far_pair_is_enough_and_every_pair_is_measured() {
        let sites = [
            site("shanghai", "aliyun", SHANGHAI),
            site("hangzhou", "aliyun", HANGZHOU),
            site("guangzhou", "tencent", GUANGZHOU),
        ];

        let plan = plan_sites(&sites, true).unwrap();

        let pairs: Vec<_> = plan
            .distances
            .iter()
            .map(|d| (d.from.as_str(), d.to.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("shanghai", "hangzhou"),
                ("shanghai", "guangzhou"),
                ("hangzhou", "guangzhou")
            ]
        );
        assert!(plan.warnings.is_empty(), "{plan:?}");
    }

    #[test]
    fn a_single_provider_gives_a_warning() {
        let sites = [
            site("shanghai", "aliyun", SHANGHAI),
            site("beijing", "Aliyun", BEIJING),
        ];

        let plan = plan_sites(&sites, true).unwrap();

        assert_eq!(
            plan.warnings,
            ["all sites use one provider (aliyun); the standard prefers different providers"]
        );
    }

    #[test]
    fn rules_come_from_site_rules() {
        let sites = [
            site("shanghai", "aliyun", SHANGHAI),
            site("hangzhou", "tencent", HANGZHOU),
        ];
        let rules = SiteRules {
            min_separation_km: 100.0,
            preferred_separation_km: 150.0,
        };

        let plan = plan_sites_with(&sites, true, &rules).unwrap();

        assert!(plan.warnings.is_empty(), "{plan:?}");
        assert_eq!(SiteRules::default().min_separation_km, 200.0);
        assert_eq!(SiteRules::default().preferred_separation_km, 600.0);
    }

    #[test]
    fn a_single_local_site_without_redundancy_warns() {
        let plan = plan_sites(&[site("laptop", "self", SHANGHAI)], false).unwrap();

        assert_eq!(plan.primary, "laptop");
        assert!(plan.distances.is_empty());
        assert_eq!(plan.warnings, [NO_REDUNDANCY]);
        assert_eq!(
            NO_REDUNDANCY,
            "no redundancy: media are kept at one site only"
        );
    }

    #[test]
    fn too_few_sites_are_refused_when_redundancy_is_required() {
        let one = [site("shanghai", "aliyun", SHANGHAI)];

        assert_eq!(plan_sites(&one, true), Err(SiteError::TooFewSites));
        assert_eq!(plan_sites(&[], true), Err(SiteError::NoSites));
        assert_eq!(plan_sites(&[], false), Err(SiteError::NoSites));
    }

    #[test]
    fn duplicate_and_empty_names_are_refused() {
        let twice = [
            site("shanghai", "aliyun", SHANGHAI),
            site("Shanghai", "tencent", BEIJING),
        ];
        let blank = [
            site("shanghai", "aliyun", SHANGHAI),
            site(" ", "tencent", BEIJING),
        ];

        assert_eq!(
            plan_sites(&twice, false),
            Err(SiteError::DuplicateName {
                name: "Shanghai".into()
            })
        );
        assert_eq!(
            plan_sites(&blank, false),
            Err(SiteError::EmptyName { position: 2 })
        );
    }

    #[test]
    fn invalid_coordinates_and_blank_providers_are_refused() {
        for bad in [
            (91.0, 0.0),
            (-90.5, 0.0),
            (0.0, 180.5),
            (f64::NAN, 0.0),
            (0.0, f64::INFINITY),
        ] {
            let error = plan_sites(&[site("x", "aliyun", bad)], false).unwrap_err();
            assert!(
                matches!(error, SiteError::InvalidCoordinates { .. }),
                "{bad:?}: {error:?}"
            );
        }
        assert!(plan_sites(&[site("pole", "aliyun", (90.0, -180.0))], false).is_ok());
        assert_eq!(
            plan_sites(&[site("x", "", SHANGHAI)], false),
            Err(SiteError::EmptyProvider { site: "x".into() })
        );
    }

    #[test]
    fn an_s3_store_named_apart_from_its_site_is_refused() {
        let mut shanghai = site("shanghai", "aliyun", SHANGHAI);
        shanghai.store = s3_store("elsewhere");

        let error = plan_sites(&[shanghai], false).unwrap_err();

        assert!(
            matches!(error, SiteError::StoreNameMismatch { .. }),
            "{error:?}"
        );
    }

    fn s3_store(name: &str) -> StoreConfig {
        StoreConfig::S3 {
            name: name.into(),
            endpoint: "https://oss-cn-beijing.aliyuncs.com".into(),
            region: "cn-beijing".into(),
            bucket: "evidence".into(),
            access_key_id: "flexwork".into(),
            secret_access_key: SECRET.into(),
            path_style: false,
            prefix: String::new(),
        }
    }

    #[derive(Deserialize)]
    struct File {
        sites: Vec<SiteConfig>,
    }

    const TOML: &str = r#"
        [[sites]]
        name = "shanghai-1"
        provider = "own-rack"
        latitude = 31.23
        longitude = 121.47
        kind = "local"
        path = "/srv/media"

        [[sites]]
        name = "beijing-1"
        provider = "aliyun"
        latitude = 39.90
        longitude = 116.40
        kind = "s3"
        endpoint = "https://oss-cn-beijing.aliyuncs.com"
        region = "cn-beijing"
        bucket = "evidence"
        access_key_id = "flexwork"
        secret_access_key = "wJalrXUtnFEMI-very-secret-key"
    "#;

    #[test]
    fn sites_read_from_toml_and_plan() {
        let file: File = toml::from_str(TOML).unwrap();

        let [local, s3] = file.sites.as_slice() else {
            panic!("expected two sites, got {:?}", file.sites);
        };
        assert_eq!(
            local.store,
            StoreConfig::Local {
                path: "/srv/media".into()
            }
        );
        assert_eq!(
            (s3.name.as_str(), s3.provider.as_str()),
            ("beijing-1", "aliyun")
        );
        assert_eq!((s3.latitude, s3.longitude), (39.90, 116.40));
        assert_eq!(s3.store, s3_store("beijing-1"));
        let plan = plan_sites(&file.sites, true).unwrap();
        assert_eq!(plan.primary, "shanghai-1");
        assert!(plan.warnings.is_empty(), "{plan:?}");
    }

    #[test]
    fn debug_never_shows_the_secret_key() {
        let file: File = toml::from_str(TOML).unwrap();

        let shown = format!("{:?} {:#?}", file.sites, file.sites);

        assert!(!shown.contains(SECRET), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("beijing-1"),
            "{shown}"
        );
    }

    #[test]
    fn sites_round_trip_through_toml() {
        let file: File = toml::from_str(TOML).unwrap();
        let mut table = toml::Table::new();
        table.insert("sites".into(), toml::Value::try_from(&file.sites).unwrap());

        let again: File = toml::from_str(&toml::to_string(&table).unwrap()).unwrap();

        assert_eq!(format!("{:?}", again.sites), format!("{:?}", file.sites));
        assert_eq!(again.sites[1].store, file.sites[1].store);
    }
}
