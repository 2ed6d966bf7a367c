//! Scenario tests on the real fixtures in `shared/fixtures`.

use super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures");

#[test]
fn explore() {
    for dir in ["photos", "photos-invalid"] {
        let mut names: Vec<_> = std::fs::read_dir(format!("{FIXTURES}/{dir}")).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for p in names {
            let bytes = std::fs::read(&p).unwrap();
            let f = analyze_photo(&bytes, &Thresholds::default());
            println!("{}: {}", p.display(), serde_json::to_string(&f).unwrap());
        }
    }
    for t in ["garmin-activity.gpx", "gpsies-example.gpx"] {
        let pts = track_from_gpx(std::fs::File::open(format!("{FIXTURES}/tracks/{t}")).unwrap()).unwrap();
        let r = verify(&Evidence { track: pts.clone(), ..Default::default() }, &Context::default(), &[], &Thresholds::default());
        println!("{t}: {} pts first {:?} last {:?}\n{}", pts.len(), pts.first(), pts.last(), serde_json::to_string_pretty(&r).unwrap());
    }
}
