//! Media kept at two sites: the upload's copy at the primary, a copy at the second site
//! through the replication queue, reads served from the other site when a copy is lost, and
//! the lost copy repaired.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::time::{Duration, Instant};

use crate::support::{AREZZO, Client, Phone, Scene, TestServer, fixture_bytes};
use flexwork_storage::{ContentHash, MediaStore, SiteConfig, StoreConfig};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/test"))
}

/// A fresh bucket on the S3-compatible test server, as a site.
fn s3_site(name: &str, latitude: f64, longitude: f64) -> SiteConfig {
    s3_site_on("", name, latitude, longitude)
}

/// A fresh bucket on the test server whose variables end in `suffix` ("" or "_R2", the
/// second server of `scripts/test`, standing for another region).
fn s3_site_on(suffix: &str, name: &str, latitude: f64, longitude: f64) -> SiteConfig {
    let var = |base: &str| env(&format!("{base}{suffix}"));
    let (endpoint, key, secret) = (
        var("FLEXWORK_TEST_S3_ENDPOINT"),
        var("FLEXWORK_TEST_S3_ACCESS_KEY"),
        var("FLEXWORK_TEST_S3_SECRET_KEY"),
    );
    let bucket = format!("flexwork-site-{}", uuid::Uuid::new_v4().simple());
    let client = flexwork_storage::s3_client(&endpoint, "us-east-1", &key, &secret, true);
    let create = client.create_bucket().bucket(&bucket).send();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(create)
        .unwrap();
    let store = StoreConfig::S3 {
        name: name.into(),
        endpoint,
        region: "us-east-1".into(),
        bucket,
        access_key_id: key,
        secret_access_key: secret,
        path_style: true,
        prefix: String::new(),
    };
    SiteConfig {
        name: name.into(),
        provider: if suffix.is_empty() {
            "s3s-fs"
        } else {
            "garage"
        }
        .into(),
        latitude,
        longitude,
        store,
    }
}

fn local_site(dir: &std::path::Path, name: &str, latitude: f64, longitude: f64) -> SiteConfig {
    let store = StoreConfig::Local {
        path: dir.to_path_buf(),
    };
    SiteConfig {
        name: name.into(),
        provider: "own-rack".into(),
        latitude,
        longitude,
        store,
    }
}

/// The scene's worker records one fixture photo and syncs it; returns its bytes and hash.
fn upload_photo(server: &TestServer, scene: &Scene, name: &str) -> (Vec<u8>, ContentHash) {
    let mut phone = Phone::for_scene(server, scene);
    let photo = fixture_bytes(&format!("photos/{name}"));
    let order = &scene.order_id;
    phone
        .device
        .record_photo(order, &photo, "image/jpeg", None, 0)
        .unwrap();
    assert_eq!(phone.sync().blobs_uploaded, 1);
    let hash = ContentHash::of(&photo);
    (photo, hash)
}

/// The store of site `name`, as the server holds it.
fn site(server: &TestServer, name: &str) -> std::sync::Arc<flexwork_storage::SealedStore> {
    server.state().sites.by_name(name).unwrap().clone()
}

/// The sealed bytes of `hash` at site `name`, straight from its folder or bucket.
fn sealed_copy(server: &TestServer, name: &str, hash: &ContentHash) -> Option<Vec<u8>> {
    let store = site(server, name);
    server
        .block_on(store.inner().get(&store.media_key(hash)))
        .unwrap()
        .map(|b| b.to_vec())
}

/// Deletes the copy of `hash` at site `name` behind the server's back.
fn lose_copy(server: &TestServer, name: &str, hash: &ContentHash) {
    let store = site(server, name);
    server
        .block_on(store.inner().delete(&store.media_key(hash)))
        .unwrap();
}

/// Flips one byte of the copy of `hash` at site `name` behind the server's back.
fn damage_copy(server: &TestServer, name: &str, hash: &ContentHash, at: usize) {
    let store = site(server, name);
    let mut bytes = sealed_copy(server, name, hash).unwrap();
    bytes[at] ^= 0x01;
    let key = store.media_key(hash);
    server
        .block_on(store.inner().put(&key, bytes.into()))
        .unwrap();
}

/// Whether site `name` holds a copy of `hash` that opens to exactly `content`.
fn holds(server: &TestServer, name: &str, hash: &ContentHash, content: &[u8]) -> bool {
    let store = site(server, name);
    server
        .block_on(store.get(hash))
        .is_ok_and(|bytes| bytes == content)
}

/// Waits until every site reports `done` or `stored` for the blob.
fn wait_all_copies(operator: &Client, hash: &ContentHash) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, copies) = operator.get(&format!("/media/{hash}/copies"));
        let states: Vec<_> = copies
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["state"].clone())
            .collect();
        if states.iter().all(|s| s == "done" || s == "stored") {
            return copies;
        }
        assert!(
            Instant::now() < deadline,
            "copies did not complete: {copies}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs an S3-compatible server: run scripts/test"]
fn a_photo_reaches_the_second_site_and_a_lost_copy_is_served_and_repaired() {
    // 1. Two sites, Shanghai (a local folder) and Beijing (an S3 bucket), ~1,070 km apart.
    let primary_dir = tempfile::tempdir().unwrap();
    let beijing = s3_site("beijing", 39.90, 116.40);
    let shanghai = local_site(primary_dir.path(), "shanghai", 31.23, 121.47);
    let server = TestServer::start_with(|c| {
        c.sites = vec![shanghai, beijing.clone()];
        c.require_redundancy = true;
    });

    // 2. A worker uploads a photo; the copy to Beijing completes through the queue.
    let scene = server.scene("sites", &AREZZO);
    let (photo, hash) = upload_photo(&server, &scene, "DSCN0029.jpg");
    let copies = wait_all_copies(&scene.operator, &hash);
    assert_eq!(copies[0]["site"], "shanghai");
    assert_eq!(copies[1]["site"], "beijing");
    assert_eq!(copies[1]["state"], "done");

    // 3. The primary's copy is lost; the photo is still served, from Beijing.
    lose_copy(&server, "shanghai", &hash);
    assert!(sealed_copy(&server, "shanghai", &hash).is_none());
    let (status, _) = scene.operator.get(&format!("/media/{hash}"));
    assert_eq!(status, 200);

    // 4. The lost copy is repaired from the other site, byte for byte.
    wait_all_copies(&scene.operator, &hash);
    assert!(holds(&server, "shanghai", &hash, &photo));
}

#[test]
fn sites_too_close_together_are_refused_when_redundancy_is_required() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut config = flexwork_server::Config {
        data_dir: a.path().join("data"),
        sites: vec![
            local_site(a.path(), "shanghai", 31.23, 121.47),
            local_site(b.path(), "hangzhou", 30.27, 120.15),
        ],
        require_redundancy: true,
        ..flexwork_server::Config::default()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let refused = runtime.block_on(flexwork_server::AppState::start(config.clone()));
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("200 km"), "{message}");

    config.require_redundancy = false;
    assert!(
        runtime
            .block_on(flexwork_server::AppState::start(config))
            .is_ok()
    );
}

#[test]
#[ignore = "needs an S3-compatible server: run scripts/test"]
fn scrub_finds_a_deleted_and_a_corrupted_copy_and_repairs_both() {
    // 1. Two photos copied to the second site.
    let primary_dir = tempfile::tempdir().unwrap();
    let beijing = s3_site("beijing", 39.90, 116.40);
    let shanghai = local_site(primary_dir.path(), "shanghai", 31.23, 121.47);
    let server = TestServer::start_with(|c| c.sites = vec![shanghai, beijing.clone()]);
    let scene = server.scene("scrub", &AREZZO);
    let mut phone = Phone::for_scene(&server, &scene);
    let photos = [
        fixture_bytes("photos/DSCN0038.jpg"),
        fixture_bytes("photos/DSCN0040.jpg"),
    ];
    for photo in &photos {
        phone
            .device
            .record_photo(&scene.order_id, photo, "image/jpeg", None, 0)
            .unwrap();
    }
    assert_eq!(phone.sync().blobs_uploaded, 2);
    let hashes = photos.each_ref().map(|p| ContentHash::of(p));
    for hash in &hashes {
        wait_all_copies(&scene.operator, hash);
    }

    // 2. On the second site, one copy is deleted and one has a byte flipped.
    lose_copy(&server, "beijing", &hashes[0]);
    damage_copy(&server, "beijing", &hashes[1], 1000);
    let read = server.block_on(site(&server, "beijing").get(&hashes[1]));
    assert!(
        matches!(read, Err(flexwork_storage::StorageError::Corrupt { .. })),
        "a damaged copy must never be returned: {read:?}"
    );

    // 3. A scrub finds both and repairs both; the second site holds good copies again.
    let state = server.state().clone();
    let report = server
        .block_on(flexwork_server::replication::scrub(&state, |_, _| {}))
        .unwrap();
    assert_eq!((report.objects, report.copies_checked), (2, 4));
    assert_eq!((report.missing, report.corrupt, report.repaired), (1, 1, 2));
    assert!(holds(&server, "beijing", &hashes[0], &photos[0]));
    assert!(holds(&server, "beijing", &hashes[1], &photos[1]));
    let again = server
        .block_on(flexwork_server::replication::scrub(&state, |_, _| {}))
        .unwrap();
    assert_eq!((again.missing, again.corrupt, again.repaired), (0, 0, 0));
}

#[test]
#[ignore = "needs an S3-compatible server: run scripts/test"]
fn a_restore_drill_restores_and_verifies_every_object_and_is_remembered() {
    // 1. Three photos, copied to the second site; no drill has run yet.
    let primary_dir = tempfile::tempdir().unwrap();
    let beijing = s3_site("beijing", 39.90, 116.40);
    let shanghai = local_site(primary_dir.path(), "shanghai", 31.23, 121.47);
    let server = TestServer::start_with(|c| c.sites = vec![shanghai, beijing.clone()]);
    let scene = server.scene("drill", &AREZZO);
    assert_eq!(scene.operator.get("/drills/status").1["overdue"], true);
    let mut phone = Phone::for_scene(&server, &scene);
    let names = ["DSCN0010.jpg", "DSCN0012.jpg", "DSCN0021.jpg"];
    let photos: Vec<_> = names
        .iter()
        .map(|n| fixture_bytes(&format!("photos/{n}")))
        .collect();
    for photo in &photos {
        phone
            .device
            .record_photo(&scene.order_id, photo, "image/jpeg", None, 0)
            .unwrap();
    }
    phone.sync();
    for photo in &photos {
        wait_all_copies(&scene.operator, &ContentHash::of(photo));
    }

    // 2. A drill from Beijing restores all three into a scratch folder, intact.
    let scratch = tempfile::tempdir().unwrap();
    let state = server.state().clone();
    let drill = flexwork_server::drill::run(&state, "beijing", None, scratch.path());
    let report = server.block_on(drill).unwrap();
    assert_eq!(report.objects, 3);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        report.bytes,
        photos.iter().map(|p| p.len() as u64).sum::<u64>()
    );
    for photo in &photos {
        let restored = scratch.path().join(ContentHash::of(photo).to_hex());
        assert_eq!(&std::fs::read(restored).unwrap(), photo);
    }

    // 3. Its dated report is on disk, and the operator sees when it ran.
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report.report_path).unwrap()).unwrap();
    assert_eq!(written["objects"], 3);
    let (_, status) = scene.operator.get("/drills/status");
    assert_eq!(
        (status["overdue"].clone(), status["last_drill_site"].clone()),
        (false.into(), "beijing".into())
    );

    // 4. A sample of one restores one; an unknown site is a clear error.
    let sample = flexwork_server::drill::run(&state, "shanghai", Some(1), scratch.path());
    assert_eq!(server.block_on(sample).unwrap().objects, 1);
    let unknown = flexwork_server::drill::run(&state, "mars", None, scratch.path());
    assert_eq!(server.block_on(unknown).unwrap_err().code, "unknown_site");
}

#[test]
#[ignore = "needs an S3-compatible server: run scripts/test"]
fn an_upload_while_the_primary_is_down_is_kept_elsewhere_and_reaches_the_primary_later() {
    // 1. Two sites; the primary's folder becomes unusable (a file where the folder was).
    let primary_dir = tempfile::tempdir().unwrap();
    let primary = primary_dir.path().join("media");
    let beijing = s3_site("beijing", 39.90, 116.40);
    let shanghai = local_site(&primary, "shanghai", 31.23, 121.47);
    let server = TestServer::start_with(|c| c.sites = vec![shanghai, beijing.clone()]);
    std::fs::remove_dir_all(&primary).unwrap();
    std::fs::write(&primary, b"not a folder").unwrap();

    // 2. The upload is still acknowledged: it is durable at the second site.
    let scene = server.scene("primary-down", &AREZZO);
    let (photo, hash) = upload_photo(&server, &scene, "DSCN0042.jpg");
    let (_, copies) = scene.operator.get(&format!("/media/{hash}/copies"));
    assert_eq!(copies[0]["state"], "pending", "{copies}");
    assert_eq!(copies[1]["state"], "stored", "{copies}");
    assert_eq!(scene.operator.get(&format!("/media/{hash}")).0, 200);

    // 3. The primary comes back and catches up through the queue; nothing is duplicated.
    std::fs::remove_file(&primary).unwrap();
    std::fs::create_dir(&primary).unwrap();
    let copies = wait_all_copies(&scene.operator, &hash);
    assert_eq!(copies[0]["state"], "done");
    assert!(holds(&server, "shanghai", &hash, &photo));
}

#[test]
#[ignore = "needs an S3-compatible server: run scripts/test"]
fn the_scheduled_scrub_repairs_a_damaged_copy_by_itself() {
    // 1. A scrub every second; one photo copied to the second site.
    let primary_dir = tempfile::tempdir().unwrap();
    let beijing = s3_site("beijing", 39.90, 116.40);
    let shanghai = local_site(primary_dir.path(), "shanghai", 31.23, 121.47);
    let server = TestServer::start_with(|c| {
        c.sites = vec![shanghai, beijing.clone()];
        c.scrub_interval_secs = 1;
    });
    let scene = server.scene("scheduled", &AREZZO);
    let mut phone = Phone::for_scene(&server, &scene);
    let photo = fixture_bytes("photos/DSCN0025.jpg");
    phone
        .device
        .record_photo(&scene.order_id, &photo, "image/jpeg", None, 0)
        .unwrap();
    phone.sync();
    let hash = ContentHash::of(&photo);
    wait_all_copies(&scene.operator, &hash);

    // 2. The primary's copy is damaged behind the server's back; nobody reads it.
    damage_copy(&server, "shanghai", &hash, 500);

    // 3. Within a few scheduled scrubs the copy is whole again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !holds(&server, "shanghai", &hash, &photo) {
        assert!(
            Instant::now() < deadline,
            "the scheduled scrub did not repair the copy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs two S3-compatible servers: run scripts/test"]
fn two_s3_regions_hold_every_photo_sealed_and_a_lost_copy_comes_back() {
    // 1. Shanghai is one S3 server (s3s-fs), Beijing another (Garage), each its own region.
    let shanghai = s3_site("shanghai", 31.23, 121.47);
    let beijing = s3_site_on("_R2", "beijing", 39.90, 116.40);
    let server = TestServer::start_with(|c| {
        c.sites = vec![shanghai.clone(), beijing.clone()];
        c.require_redundancy = true;
    });

    // 2. A photo lands in both regions.
    let scene = server.scene("regions", &AREZZO);
    let (photo, hash) = upload_photo(&server, &scene, "DSCN0027.jpg");
    wait_all_copies(&scene.operator, &hash);
    assert!(holds(&server, "shanghai", &hash, &photo));
    assert!(holds(&server, "beijing", &hash, &photo));

    // 3. Neither object server's disk holds the photo's bytes in the clear or names an object
    //    by the photo's hash; the platform's own folder (database included) holds no plaintext.
    let mut buckets = vec![
        std::path::PathBuf::from(env("FLEXWORK_TEST_S3_DATA_DIR")),
        std::path::PathBuf::from(env("FLEXWORK_TEST_S3_DATA_DIR_R2")),
    ];
    buckets.extend(
        std::env::var("FLEXWORK_TEST_S3_META_DIR_R2")
            .ok()
            .map(Into::into),
    );
    let needles = photo_samples(&photo);
    let hex = hash.to_hex();
    for (path, bytes) in buckets.iter().flat_map(|b| files_under(b)) {
        assert!(
            !needles.iter().any(|n| contains(&bytes, n)),
            "{}",
            path.display()
        );
        assert!(
            !contains(&bytes, hex.as_bytes()),
            "{} names the hash",
            path.display()
        );
        assert!(!path.to_string_lossy().contains(&hex), "{}", path.display());
    }
    let platform = files_under(&server.state().config.data_dir);
    assert!(
        platform
            .iter()
            .any(|(p, _)| p.ends_with("master-keys.toml"))
    );
    for (path, bytes) in platform {
        assert!(
            !needles.iter().any(|n| contains(&bytes, n)),
            "{}",
            path.display()
        );
    }

    // 4. The first region loses it; reads go on, and the copy is restored there.
    lose_copy(&server, "shanghai", &hash);
    assert_eq!(scene.operator.get(&format!("/media/{hash}")).0, 200);
    wait_all_copies(&scene.operator, &hash);
    assert!(holds(&server, "shanghai", &hash, &photo));
}

/// Pieces of a photo's compressed image data: no other file holds them by chance.
fn photo_samples(photo: &[u8]) -> Vec<Vec<u8>> {
    (1..8)
        .map(|i| {
            let at = photo.len() * i / 8;
            photo[at..at + 32].to_vec()
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file at or under `place`, with its bytes.
fn files_under(place: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if place.is_file() {
        out.push((place.to_owned(), std::fs::read(place).unwrap()));
    } else if let Ok(entries) = std::fs::read_dir(place) {
        for entry in entries.flatten() {
            out.extend(files_under(&entry.path()));
        }
    }
    out
}

#[test]
#[ignore = "needs two S3-compatible servers: run scripts/test"]
fn a_server_killed_during_a_multipart_upload_resumes_it_and_the_object_is_whole() {
    // 1. An S3 primary that takes large media in parts; a 60 MiB photo on the phone (a real
    //    photo padded with noise, as large as a short video).
    let shanghai = s3_site("shanghai", 31.23, 121.47);
    let beijing = s3_site_on("_R2", "beijing", 39.90, 116.40);
    let (endpoint, bucket) = match &shanghai.store {
        StoreConfig::S3 {
            endpoint, bucket, ..
        } => (endpoint.clone(), bucket.clone()),
        StoreConfig::Local { .. } => unreachable!("an S3 site"),
    };
    let mut server = TestServer::start_with(|c| {
        c.sites = vec![shanghai.clone(), beijing.clone()];
        c.limits.max_upload_bytes = 100 * 1024 * 1024;
    });
    let scene = server.scene("killed", &AREZZO);
    let mut large = fixture_bytes("photos/DSCN0010.jpg");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    large.resize_with(60 * 1024 * 1024, || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 32) as u8
    });
    let hash = ContentHash::of(&large);
    let mut phone = Phone::for_scene(&server, &scene);
    phone
        .device
        .record_photo(&scene.order_id, &large, "image/jpeg", None, 0)
        .unwrap();

    // 2. The phone syncs; once the primary holds some parts of the upload, the server dies.
    let syncing = std::thread::spawn(move || {
        let transport = phone.device.transport().unwrap();
        let report = phone.device.sync(&transport);
        (phone, report)
    });
    let watcher = tokio::runtime::Runtime::new().unwrap();
    let client = flexwork_storage::s3_client(
        &endpoint,
        "us-east-1",
        &env("FLEXWORK_TEST_S3_ACCESS_KEY"),
        &env("FLEXWORK_TEST_S3_SECRET_KEY"),
        true,
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let parts_before_kill = loop {
        let parts = watcher.block_on(parts_in_flight(&client, &bucket));
        if parts > 0 {
            break parts;
        }
        assert!(Instant::now() < deadline, "no multipart upload was seen");
        std::thread::sleep(Duration::from_millis(5));
    };
    server.kill();
    let (mut phone, first) = syncing.join().unwrap();
    let report = format!("{first:?}");
    assert!(
        first.is_err() || !first.unwrap().failures.is_empty(),
        "the upload cannot have completed: {report}"
    );

    // 3. The server comes back; the phone's next sync finishes the upload, sending only the
    //    parts the primary did not have.
    server.restart();
    phone.sync();
    let copies = wait_all_copies(&scene.operator, &hash);
    assert_eq!(copies[0]["state"], "stored", "{copies}");
    let sent_after = server.state().sites.primary().inner().parts_sent();
    let total = (large.len() as u64).div_ceil(8 * 1024 * 1024);
    assert!(parts_before_kill >= 1);
    assert!(
        sent_after < total,
        "{sent_after} of {total} parts were sent again: the upload started over"
    );

    // 4. The object is whole at both sites and no unfinished upload is left.
    assert!(holds(&server, "shanghai", &hash, &large));
    assert!(holds(&server, "beijing", &hash, &large));
    assert_eq!(watcher.block_on(parts_in_flight(&client, &bucket)), 0);
}

/// Parts held by unfinished multipart uploads in `bucket`, found through the notes the
/// store keeps under `uploads/` (s3s-fs does not list multipart uploads).
async fn parts_in_flight(client: &aws_sdk_s3::Client, bucket: &str) -> usize {
    let notes = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix("uploads/")
        .send()
        .await
        .unwrap();
    let mut parts = 0;
    for note in notes.contents() {
        let marker = note.key().unwrap();
        let id = client.get_object().bucket(bucket).key(marker).send().await;
        let Ok(id) = id else { continue };
        let id = id.body.collect().await.unwrap().into_bytes();
        let key = marker.strip_prefix("uploads/").unwrap();
        let listed = client
            .list_parts()
            .bucket(bucket)
            .key(key)
            .upload_id(String::from_utf8_lossy(&id))
            .send()
            .await;
        parts += listed.map_or(0, |l| l.parts().len());
    }
    parts
}

#[test]
fn a_key_rotation_rewraps_every_site_and_the_old_master_key_can_then_be_retired() {
    // 1. Two local sites far apart; one photo at both.
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = TestServer::start_with(|c| {
        c.sites = vec![
            local_site(a.path(), "shanghai", 31.23, 121.47),
            local_site(b.path(), "beijing", 39.90, 116.40),
        ];
    });
    let scene = server.scene("rotation", &AREZZO);
    let (photo, hash) = upload_photo(&server, &scene, "DSCN0012.jpg");
    wait_all_copies(&scene.operator, &hash);
    let state = server.state().clone();
    let before = server
        .block_on(flexwork_server::keys::status(&state))
        .unwrap();
    let sealed_before = sealed_copy(&server, "beijing", &hash).unwrap();

    // 2. The current key cannot be retired. A rotation while Beijing's folder is away reaches
    //    only Shanghai, and retiring the old key is then refused.
    let refused = server.block_on(flexwork_server::keys::retire(&state, &before.current));
    assert_eq!(refused.unwrap_err().code, "master_key_current");
    let away = b.path().with_extension("away");
    std::fs::rename(b.path(), &away).unwrap();
    let sm4 = flexwork_storage::Suite::Sm4GcmSm3;
    let partial = server
        .block_on(flexwork_server::keys::rotate(&state, sm4))
        .unwrap();
    assert_eq!(partial.sites["beijing"].checked, 0);
    let refused = server.block_on(flexwork_server::keys::retire(&state, &before.current));
    assert_eq!(refused.unwrap_err().code, "site_incomplete");

    // 3. Beijing is back; a second rotation re-wraps both sites.
    let _ = std::fs::remove_dir_all(b.path());
    std::fs::rename(&away, b.path()).unwrap();
    let rotation = server
        .block_on(flexwork_server::keys::rotate(&state, sm4))
        .unwrap();
    assert_eq!(rotation.previous, partial.current);
    for report in rotation.sites.values() {
        assert_eq!((report.checked, report.rewrapped, report.failed), (1, 1, 0));
    }

    // 4. The media was not rewritten, still reads, and the old keys can go.
    assert_eq!(
        sealed_copy(&server, "beijing", &hash).unwrap(),
        sealed_before
    );
    for old in [&before.current, &partial.current] {
        server
            .block_on(flexwork_server::keys::retire(&state, old))
            .unwrap();
    }
    let after = server
        .block_on(flexwork_server::keys::status(&state))
        .unwrap();
    assert_eq!(after.master_keys, vec![rotation.current.clone()]);
    assert!(holds(&server, "shanghai", &hash, &photo));
    assert!(holds(&server, "beijing", &hash, &photo));
}

#[test]
fn a_server_refuses_to_start_with_a_key_file_that_does_not_open_its_media() {
    // 1. A photo stored at two local sites.
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut server = TestServer::start_with(|c| {
        c.sites = vec![
            local_site(a.path(), "shanghai", 31.23, 121.47),
            local_site(b.path(), "beijing", 39.90, 116.40),
        ];
    });
    let scene = server.scene("wrong-keys", &AREZZO);
    let (_, hash) = upload_photo(&server, &scene, "DSCN0021.jpg");
    wait_all_copies(&scene.operator, &hash);
    let key_file = server.state().config.key_file();
    let config = server.state().config.clone();
    server.stop();

    // 2. The key file is lost and a new one would be made: the server says why it stops.
    let saved = std::fs::read(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let start = server.block_on(flexwork_server::AppState::start(config.clone()));
    let error = start.unwrap_err().to_string();
    assert!(error.contains("master key file"), "{error}");

    // 3. With its own key file back, it starts and serves the photo.
    std::fs::write(&key_file, saved).unwrap();
    server.restart();
    assert_eq!(scene.operator.get(&format!("/media/{hash}")).0, 200);
}

#[test]
fn a_restore_drill_over_three_hundred_objects_verifies_every_one_and_writes_its_report() {
    // 1. Three hundred blobs stored at two local sites, as uploads store them.
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = TestServer::start_with(|c| {
        c.sites = vec![
            local_site(a.path(), "shanghai", 31.23, 121.47),
            local_site(b.path(), "beijing", 39.90, 116.40),
        ];
    });
    let state = server.state().clone();
    let staged = tempfile::tempdir().unwrap();
    let mut total = 0u64;
    for i in 0..300u32 {
        let bytes: Vec<u8> = (0..2_000 + i)
            .map(|j| ((i * 31 + j * 7) % 251) as u8)
            .collect();
        let hash = ContentHash::of(&bytes);
        let path = staged.path().join(hash.to_hex());
        std::fs::write(&path, &bytes).unwrap();
        server
            .block_on(flexwork_server::replication::store_upload(
                &state, &hash, &path,
            ))
            .unwrap();
        let row = sqlx::query(
            "INSERT INTO media_objects (hash, size, media_type, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(hash.to_hex())
        .bind(bytes.len() as i64)
        .bind("application/octet-stream")
        .bind(0i64);
        server.block_on(row.execute(&state.db.pool)).unwrap();
        total += bytes.len() as u64;
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = sqlx::query(
            "SELECT COUNT(*) AS n FROM replication_jobs WHERE site = 'beijing' AND state = 'done'",
        );
        let row = server.block_on(done.fetch_one(&state.db.pool)).unwrap();
        if sqlx::Row::get::<i64, _>(&row, "n") == 300 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the copies to Beijing did not finish"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // 2. One copy is damaged at Beijing; the drill from Beijing verifies all 300, names it.
    let damaged = ContentHash::of(
        &(0..2_000u32)
            .map(|j| ((j * 7) % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    damage_copy(&server, "beijing", &damaged, 100);
    let scratch = tempfile::tempdir().unwrap();
    let drill = flexwork_server::drill::run(&state, "beijing", None, scratch.path());
    let report = server.block_on(drill).unwrap();
    assert_eq!(report.objects, 300);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert_eq!(report.failures[0].hash, damaged.to_hex());
    assert_eq!(report.bytes, total - 2_000);
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report.report_path).unwrap()).unwrap();
    assert_eq!(written["objects"], 300);

    // 3. A failed drill does not count as the quarter's drill; a clean one from Shanghai does.
    let status = server
        .block_on(flexwork_server::drill::status(&state))
        .unwrap();
    assert!(status.overdue);
    let clean = flexwork_server::drill::run(&state, "shanghai", None, scratch.path());
    assert!(server.block_on(clean).unwrap().failures.is_empty());
    let status = server
        .block_on(flexwork_server::drill::status(&state))
        .unwrap();
    assert!(!status.overdue);
    assert_eq!(status.last_drill_site.as_deref(), Some("shanghai"));
}
