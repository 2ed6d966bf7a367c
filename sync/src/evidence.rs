//! The evidence document: one Automerge document per order, holding everything the worker
//! recorded and the server's review of it.
//!
//! Layout of the document root:
//!
//! | key | type | written by |
//! | --- | --- | --- |
//! | `schema` | int ([`SCHEMA_VERSION`]) | skeleton |
//! | `order_id` | string | skeleton |
//! | `photos` | list of [`PhotoRecord`] maps | devices |
//! | `track` | list of [`TrackPoint`] maps | devices |
//! | `signatures` | list of [`SignatureRecord`] maps | devices |
//! | `notes` | list of [`NoteRecord`] maps | devices |
//! | `submissions` | list of [`Submission`] maps | devices |
//! | `review` | [`ReviewRecord`] map | the server only |
//!
//! Devices only ever append to the lists, so two phones of the same worker editing the same
//! order offline merge with nothing lost. The skeleton (root keys and empty lists) is created
//! by one deterministic change — fixed actor, fixed time — that every peer produces
//! byte-for-byte, so a phone and the server that each create the document independently share
//! its first change instead of holding two conflicting `photos` lists. Media bytes are never in
//! the document: a photo is referenced by its [`ContentHash`].

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, AutoSerde, ObjId, ObjType, ROOT, ReadDoc, ScalarValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ContentHash;

/// Version of the document layout above.
pub const SCHEMA_VERSION: i64 = 1;

/// The actor of the shared skeleton change. Never used for anything else.
const SKELETON_ACTOR: &[u8] = b"flexwork-evidence-skeleton-v1";

const LISTS: [&str; 5] = ["photos", "track", "signatures", "notes", "submissions"];

/// Errors reading or writing an evidence document.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("evidence document is not valid automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    #[error("evidence document has no `{0}` list")]
    MissingList(&'static str),
    #[error("evidence document could not be read: {0}")]
    Shape(String),
    #[error("devices may only add evidence: {0}")]
    Forbidden(String),
}

/// A position fix as the phone's OS reported it at capture. WGS-84.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    pub lat: f64,
    pub lon: f64,
    /// Horizontal accuracy radius, metres.
    pub accuracy_m: f64,
    /// Time of the fix, milliseconds since the Unix epoch (UTC).
    pub at_ms: i64,
    /// The OS said the location came from a mock provider / was simulated by software.
    pub mock: bool,
}

/// A photo taken as evidence; the bytes live in content-addressed storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoRecord {
    pub id: String,
    pub hash: ContentHash,
    pub size: u64,
    pub media_type: String,
    /// When the device recorded the photo, ms since the epoch (device clock).
    pub captured_at_ms: i64,
    /// The device's own location fix at capture, if it had one.
    pub fix: Option<Fix>,
    pub device_id: String,
}

/// One point of a work trajectory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackPoint {
    pub lat: f64,
    pub lon: f64,
    pub at_ms: Option<i64>,
    #[serde(default)]
    pub accuracy_m: Option<f64>,
    #[serde(default)]
    pub elevation_m: Option<f64>,
}

/// One sample of a signature stroke: canvas position, time and pen pressure (0..1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StrokePoint {
    pub x: f64,
    pub y: f64,
    pub t_ms: i64,
    pub pressure: f64,
}

/// A handwritten signature, kept as strokes (images are rendered only for display).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignatureRecord {
    pub id: String,
    pub strokes: Vec<Vec<StrokePoint>>,
    pub signed_at_ms: i64,
    pub device_id: String,
}

/// A free-text note by the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteRecord {
    pub id: String,
    pub text: String,
    pub at_ms: i64,
}

/// The worker declared the order done from one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub at_ms: i64,
    pub device_id: String,
}

/// One thing verification found, as shown to the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRecord {
    pub code: String,
    pub severity: String,
    pub message: String,
    pub item: Option<String>,
}

/// The server's review of the evidence: verdict and findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewRecord {
    pub verdict: String,
    pub findings: Vec<FindingRecord>,
    pub reviewed_at_ms: i64,
    pub comment: Option<String>,
}

/// Everything in an evidence document, read out as plain values.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evidence {
    pub order_id: String,
    pub photos: Vec<PhotoRecord>,
    /// Track points sorted by time (points without time keep their list order, at the end).
    pub track: Vec<TrackPoint>,
    pub signatures: Vec<SignatureRecord>,
    pub notes: Vec<NoteRecord>,
    pub submissions: Vec<Submission>,
    pub review: Option<ReviewRecord>,
    /// List items that did not have the expected shape (written by a faulty or hostile peer).
    pub malformed: Vec<String>,
}

impl Evidence {
    /// The first time the order was submitted, if it was.
    pub fn submitted_at_ms(&self) -> Option<i64> {
        self.submissions.iter().map(|s| s.at_ms).min()
    }
}

/// An evidence document for one order.
#[derive(Debug, Clone)]
pub struct EvidenceDoc {
    doc: AutoCommit,
}

impl EvidenceDoc {
    /// Creates the document for `order_id`, starting from the shared skeleton, and then makes
    /// `actor` the author of every later change.
    pub fn new(order_id: &str, actor: ActorId) -> Result<Self, EvidenceError> {
        let mut doc = AutoCommit::new().with_actor(ActorId::from(SKELETON_ACTOR));
        doc.put(ROOT, "schema", SCHEMA_VERSION)?;
        doc.put(ROOT, "order_id", order_id)?;
        for list in LISTS {
            doc.put_object(ROOT, list, ObjType::List)?;
        }
        doc.commit_with(automerge::transaction::CommitOptions::default().with_time(0));
        doc.set_actor(actor);

        Ok(Self { doc })
    }

    /// Loads a saved document and makes `actor` the author of later changes.
    pub fn load(bytes: &[u8], actor: ActorId) -> Result<Self, EvidenceError> {
        let doc = AutoCommit::load(bytes)?.with_actor(actor);
        Ok(Self { doc })
    }

    /// The whole document, compacted.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// The underlying Automerge document, for syncing.
    pub fn automerge(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }

    pub fn add_photo(&mut self, photo: &PhotoRecord, now_ms: i64) -> Result<(), EvidenceError> {
        self.append("photos", photo, now_ms)
    }

    pub fn add_signature(
        &mut self,
        signature: &SignatureRecord,
        now_ms: i64,
    ) -> Result<(), EvidenceError> {
        self.append("signatures", signature, now_ms)
    }

    pub fn add_note(&mut self, note: &NoteRecord, now_ms: i64) -> Result<(), EvidenceError> {
        self.append("notes", note, now_ms)
    }

    pub fn submit(&mut self, submission: &Submission, now_ms: i64) -> Result<(), EvidenceError> {
        self.append("submissions", submission, now_ms)
    }

    /// Appends trajectory points in one change.
    pub fn append_track(
        &mut self,
        points: &[TrackPoint],
        now_ms: i64,
    ) -> Result<(), EvidenceError> {
        let list = self.list("track")?;
        for point in points {
            let at = self.doc.length(&list);
            let value = to_json(point)?;
            write_into_list(&mut self.doc, &list, at, &value)?;
        }
        self.commit(now_ms);
        Ok(())
    }

    /// Replaces the server's review. Only the server calls this.
    pub fn set_review(&mut self, review: &ReviewRecord, now_ms: i64) -> Result<(), EvidenceError> {
        let value = to_json(review)?;
        let obj = self.doc.put_object(ROOT, "review", ObjType::Map)?;
        write_map_fields(&mut self.doc, &obj, &value)?;
        self.commit(now_ms);
        Ok(())
    }

    /// Reads everything out. Items of the wrong shape are skipped and listed in `malformed`.
    pub fn read(&self) -> Result<Evidence, EvidenceError> {
        let root = serde_json::to_value(AutoSerde::from(&self.doc))
            .map_err(|e| EvidenceError::Shape(e.to_string()))?;
        let mut evidence = Evidence {
            order_id: root["order_id"].as_str().unwrap_or_default().to_owned(),
            ..Evidence::default()
        };

        evidence.photos = items(&root, "photos", &mut evidence.malformed);
        evidence.track = items(&root, "track", &mut evidence.malformed);
        evidence.signatures = items(&root, "signatures", &mut evidence.malformed);
        evidence.notes = items(&root, "notes", &mut evidence.malformed);
        evidence.submissions = items(&root, "submissions", &mut evidence.malformed);
        evidence.review = serde_json::from_value(root["review"].clone()).ok();
        evidence.track.sort_by_key(|p| p.at_ms.unwrap_or(i64::MAX));

        Ok(evidence)
    }

    /// The document as it was at `heads` (for example before a peer's changes were merged).
    pub fn at(&mut self, heads: &[automerge::ChangeHash]) -> Result<Self, EvidenceError> {
        Ok(Self {
            doc: self.doc.fork_at(heads)?,
        })
    }

    /// Checks that everything between `before` and this document is something a device may
    /// do: append to the lists, and nothing else. Existing items may not be changed or
    /// removed, the lists may not be replaced, and the server's review may not be touched.
    pub fn check_device_changes(&self, before: &EvidenceDoc) -> Result<(), EvidenceError> {
        let old = root_json(&before.doc)?;
        let new = root_json(&self.doc)?;
        for key in ["schema", "order_id", "review"] {
            if old.get(key) != new.get(key) {
                return Err(EvidenceError::Forbidden(format!("`{key}` was changed")));
            }
        }
        if new
            .as_object()
            .is_some_and(|m| m.keys().any(|k| old.get(k).is_none()))
        {
            return Err(EvidenceError::Forbidden(
                "a new top-level key was added".into(),
            ));
        }

        for list in LISTS {
            check_appended(list, &old[list], &new[list])?;
        }
        Ok(())
    }

    /// The photos alone, without reading the rest of the document.
    pub fn photos(&self) -> Result<Vec<PhotoRecord>, EvidenceError> {
        self.read_list("photos")
    }

    /// When the order was first submitted, without reading the rest of the document.
    pub fn submitted_at_ms(&self) -> Result<Option<i64>, EvidenceError> {
        let submissions: Vec<Submission> = self.read_list("submissions")?;
        Ok(submissions.iter().map(|s| s.at_ms).min())
    }

    /// One list of the root as plain values; items of the wrong shape are skipped.
    fn read_list<T: DeserializeOwned>(&self, name: &'static str) -> Result<Vec<T>, EvidenceError> {
        let list = self.list(name)?;
        let mut out = Vec::new();
        for i in 0..self.doc.length(&list) {
            let value = value_at(&self.doc, &list, automerge::Prop::Seq(i))?;
            if let Ok(item) = serde_json::from_value(value) {
                out.push(item);
            }
        }
        Ok(out)
    }

    fn append<T: Serialize>(
        &mut self,
        list: &'static str,
        item: &T,
        now_ms: i64,
    ) -> Result<(), EvidenceError> {
        let obj = self.list(list)?;
        let at = self.doc.length(&obj);
        write_into_list(&mut self.doc, &obj, at, &to_json(item)?)?;
        self.commit(now_ms);
        Ok(())
    }

    fn list(&self, name: &'static str) -> Result<ObjId, EvidenceError> {
        match self.doc.get(ROOT, name)? {
            Some((automerge::Value::Object(ObjType::List), id)) => Ok(id),
            _ => Err(EvidenceError::MissingList(name)),
        }
    }

    fn commit(&mut self, now_ms: i64) {
        let options = automerge::transaction::CommitOptions::default().with_time(now_ms / 1000);
        self.doc.commit_with(options);
    }
}

/// The value at `prop` of `obj`, converted to JSON (maps, lists and scalars).
fn value_at(doc: &AutoCommit, obj: &ObjId, prop: automerge::Prop) -> Result<Value, EvidenceError> {
    let Some((value, id)) = doc.get(obj, prop)? else {
        return Ok(Value::Null);
    };
    match value {
        automerge::Value::Object(ObjType::Map) => {
            let mut map = serde_json::Map::new();
            for key in doc.keys(&id) {
                let field = value_at(doc, &id, automerge::Prop::Map(key.clone()))?;
                map.insert(key, field);
            }
            Ok(Value::Object(map))
        }
        automerge::Value::Object(_) => {
            let items = (0..doc.length(&id)).map(|i| value_at(doc, &id, automerge::Prop::Seq(i)));
            Ok(Value::Array(items.collect::<Result<_, _>>()?))
        }
        automerge::Value::Scalar(scalar) => Ok(scalar_json(&scalar)),
    }
}

fn scalar_json(scalar: &ScalarValue) -> Value {
    match scalar {
        ScalarValue::Str(s) => Value::String(s.to_string()),
        ScalarValue::Int(i) => Value::from(*i),
        ScalarValue::Uint(u) => Value::from(*u),
        ScalarValue::F64(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        ScalarValue::Boolean(b) => Value::Bool(*b),
        ScalarValue::Timestamp(t) => Value::from(*t),
        ScalarValue::Counter(c) => Value::from(i64::from(c)),
        _ => Value::Null,
    }
}

fn root_json(doc: &AutoCommit) -> Result<Value, EvidenceError> {
    serde_json::to_value(AutoSerde::from(doc)).map_err(|e| EvidenceError::Shape(e.to_string()))
}

/// The old items are still there, unchanged and in order, possibly with new ones between
/// them (two devices appending concurrently interleave).
fn check_appended(list: &str, old: &Value, new: &Value) -> Result<(), EvidenceError> {
    let (Some(old), Some(new)) = (old.as_array(), new.as_array()) else {
        return Err(EvidenceError::Forbidden(format!(
            "`{list}` is no longer a list"
        )));
    };
    let mut remaining = new.iter();
    for item in old {
        if !remaining.any(|candidate| candidate == item) {
            let message = format!("an existing item of `{list}` was changed or removed");
            return Err(EvidenceError::Forbidden(message));
        }
    }
    Ok(())
}

fn to_json<T: Serialize>(item: &T) -> Result<Value, EvidenceError> {
    serde_json::to_value(item).map_err(|e| EvidenceError::Shape(e.to_string()))
}

/// Reads one list of the root, item by item, so one bad item does not hide the others.
fn items<T: DeserializeOwned>(root: &Value, list: &str, malformed: &mut Vec<String>) -> Vec<T> {
    let Some(values) = root[list].as_array() else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        match serde_json::from_value(value.clone()) {
            Ok(item) => out.push(item),
            Err(e) => malformed.push(format!("{list}[{i}]: {e}")),
        }
    }
    out
}

fn scalar(value: &Value) -> ScalarValue {
    match value {
        Value::Null => ScalarValue::Null,
        Value::Bool(b) => ScalarValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => ScalarValue::Int(i),
            None => ScalarValue::F64(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => ScalarValue::Str(s.as_str().into()),
        Value::Array(_) | Value::Object(_) => ScalarValue::Null,
    }
}

fn write_into_list(
    doc: &mut AutoCommit,
    list: &ObjId,
    at: usize,
    value: &Value,
) -> Result<(), EvidenceError> {
    match value {
        Value::Object(_) => {
            let obj = doc.insert_object(list, at, ObjType::Map)?;
            write_map_fields(doc, &obj, value)
        }
        Value::Array(values) => {
            let obj = doc.insert_object(list, at, ObjType::List)?;
            write_list_items(doc, &obj, values)
        }
        other => Ok(doc.insert(list, at, scalar(other))?),
    }
}

fn write_map_fields(doc: &mut AutoCommit, map: &ObjId, value: &Value) -> Result<(), EvidenceError> {
    let Value::Object(fields) = value else {
        return Err(EvidenceError::Shape("expected an object".into()));
    };
    for (key, field) in fields {
        match field {
            Value::Object(_) => {
                let obj = doc.put_object(map, key.as_str(), ObjType::Map)?;
                write_map_fields(doc, &obj, field)?;
            }
            Value::Array(values) => {
                let obj = doc.put_object(map, key.as_str(), ObjType::List)?;
                write_list_items(doc, &obj, values)?;
            }
            other => doc.put(map, key.as_str(), scalar(other))?,
        }
    }
    Ok(())
}

fn write_list_items(
    doc: &mut AutoCommit,
    list: &ObjId,
    values: &[Value],
) -> Result<(), EvidenceError> {
    for (i, value) in values.iter().enumerate() {
        write_into_list(doc, list, i, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(n: u8) -> ActorId {
        ActorId::from(vec![n; 16])
    }

    fn photo(id: &str, bytes: &[u8]) -> PhotoRecord {
        PhotoRecord {
            id: id.into(),
            hash: ContentHash::of(bytes),
            size: bytes.len() as u64,
            media_type: "image/jpeg".into(),
            captured_at_ms: 1_700_000_000_000,
            fix: Some(Fix {
                lat: 43.46,
                lon: 11.88,
                accuracy_m: 8.5,
                at_ms: 1_700_000_000_000,
                mock: false,
            }),
            device_id: "phone-a".into(),
        }
    }

    #[test]
    fn records_read_back_as_written() {
        let mut doc = EvidenceDoc::new("order-1", actor(1)).unwrap();
        let p = photo("p1", b"jpeg bytes");
        let points = [
            TrackPoint {
                lat: 1.0,
                lon: 2.0,
                at_ms: Some(20),
                accuracy_m: None,
                elevation_m: None,
            },
            TrackPoint {
                lat: 1.5,
                lon: 2.5,
                at_ms: Some(10),
                accuracy_m: Some(4.0),
                elevation_m: None,
            },
        ];

        doc.add_photo(&p, 1).unwrap();
        doc.append_track(&points, 2).unwrap();
        doc.submit(
            &Submission {
                at_ms: 3,
                device_id: "phone-a".into(),
            },
            3,
        )
        .unwrap();
        let read = EvidenceDoc::load(&doc.save(), actor(2))
            .unwrap()
            .read()
            .unwrap();

        assert_eq!(read.order_id, "order-1");
        assert_eq!(read.photos, vec![p]);
        assert_eq!(read.track, vec![points[1].clone(), points[0].clone()]);
        assert_eq!(read.submitted_at_ms(), Some(3));
        assert!(read.malformed.is_empty());
        assert_eq!(doc.photos().unwrap(), read.photos);
        assert_eq!(doc.submitted_at_ms().unwrap(), Some(3));
    }

    #[test]
    fn independently_created_skeletons_share_their_first_change() {
        let mut a = EvidenceDoc::new("order-7", actor(1)).unwrap();
        let mut b = EvidenceDoc::new("order-7", actor(2)).unwrap();

        assert_eq!(a.automerge().get_heads(), b.automerge().get_heads());
    }

    #[test]
    fn a_device_may_append_but_not_rewrite() {
        let mut server = EvidenceDoc::new("o", actor(9)).unwrap();
        server.add_photo(&photo("p1", b"one"), 1).unwrap();
        let mut phone = EvidenceDoc::load(&server.save(), actor(2)).unwrap();
        let before = phone.clone();

        phone.add_photo(&photo("p2", b"two"), 2).unwrap();
        assert!(phone.check_device_changes(&before).is_ok());

        let photos = phone.list("photos").unwrap();
        phone.doc.delete(&photos, 0).unwrap();
        let deleted = phone.check_device_changes(&before).unwrap_err();
        assert!(
            deleted.to_string().contains("changed or removed"),
            "{deleted}"
        );

        let mut replaced = before.clone();
        replaced.doc.put(ROOT, "submissions", 42).unwrap();
        assert!(replaced.check_device_changes(&before).is_err());

        let mut reviewed = before.clone();
        let review = ReviewRecord {
            verdict: "passed".into(),
            findings: vec![],
            reviewed_at_ms: 1,
            comment: None,
        };
        reviewed.set_review(&review, 3).unwrap();
        assert!(reviewed.check_device_changes(&before).is_err());
    }

    #[test]
    fn review_is_replaced_not_merged_into() {
        let mut doc = EvidenceDoc::new("o", actor(9)).unwrap();
        let finding = FindingRecord {
            code: "photo_outside_site".into(),
            severity: "review".into(),
            message: "far".into(),
            item: Some("p1".into()),
        };
        let first = ReviewRecord {
            verdict: "needs_review".into(),
            findings: vec![finding],
            reviewed_at_ms: 5,
            comment: None,
        };
        let second = ReviewRecord {
            verdict: "passed".into(),
            findings: vec![],
            reviewed_at_ms: 6,
            comment: None,
        };

        doc.set_review(&first, 5).unwrap();
        doc.set_review(&second, 6).unwrap();

        assert_eq!(doc.read().unwrap().review, Some(second));
    }
}
