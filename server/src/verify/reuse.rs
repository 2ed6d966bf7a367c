//! Reuse checks: a photo that is the same file as, or looks like, a photo already used in
//! another order, and the same file submitted twice in one order.

use super::findings::{Findings, PhotoReport};
use super::inputs::KnownPhoto;
use super::thresholds::Thresholds;

/// How many other orders a finding names before it says "and N more".
const NAMED_ORDERS: usize = 3;

/// Runs the reuse checks for all photos of one order.
pub(crate) fn check_reuse(
    photos: &[PhotoReport],
    known: &[KnownPhoto],
    thresholds: &Thresholds,
    out: &mut Findings,
) {
    check_repeated(photos, out);
    if known.is_empty() {
        let reason = "no photos from other orders were supplied to compare with";
        out.skip("photo_reuse", reason);
        return;
    }

    for photo in photos {
        check_exact(photo, known, out);
        check_near(photo, known, thresholds, out);
    }
}

/// The same bytes submitted more than once in this order.
fn check_repeated(photos: &[PhotoReport], out: &mut Findings) {
    for (index, photo) in photos.iter().enumerate() {
        let earlier = photos[..index]
            .iter()
            .find(|p| p.facts.sha256 == photo.facts.sha256);
        if let Some(earlier) = earlier {
            let msg = format!("photos {} and {} are the same file", earlier.id, photo.id);
            out.review("photo_repeated", Some(&photo.id), msg);
        }
    }
}

fn check_exact(photo: &PhotoReport, known: &[KnownPhoto], out: &mut Findings) {
    let orders: Vec<&str> = known
        .iter()
        .filter(|k| k.sha256 == photo.facts.sha256)
        .map(|k| k.order_id.as_str())
        .collect();
    if orders.is_empty() {
        return;
    }

    let msg = format!(
        "photo {} is the very same file as a photo already used in {}",
        photo.id,
        name_orders(&orders)
    );
    out.review("photo_reused", Some(&photo.id), msg);
}

fn check_near(photo: &PhotoReport, known: &[KnownPhoto], t: &Thresholds, out: &mut Findings) {
    let Some(dhash) = photo.facts.dhash else {
        let reason = "the photo could not be decoded, so it has no perceptual hash";
        out.skip_for("photo_near_duplicate", Some(&photo.id), reason);
        return;
    };

    let mut near: Vec<(u32, &str)> = known
        .iter()
        .filter(|k| k.sha256 != photo.facts.sha256)
        .map(|k| ((k.dhash ^ dhash).count_ones(), k.order_id.as_str()))
        .filter(|(bits, _)| *bits <= t.near_duplicate_bits)
        .collect();
    near.sort();
    let Some((closest, _)) = near.first().copied() else {
        return;
    };

    let orders: Vec<&str> = near.iter().map(|(_, order)| *order).collect();
    let msg = format!(
        "photo {} looks like a photo already used in {} (difference hashes {closest} bits \
         apart, {} allowed); before/after shots of one place can look alike",
        photo.id,
        name_orders(&orders),
        t.near_duplicate_bits
    );
    out.review("photo_near_duplicate", Some(&photo.id), msg);
}

/// "order A", "orders A, B and C", "orders A, B, C and 2 more".
fn name_orders(orders: &[&str]) -> String {
    let mut unique: Vec<&str> = Vec::new();
    for order in orders {
        if !unique.contains(order) {
            unique.push(order);
        }
    }

    match unique.as_slice() {
        [one] => format!("order {one}"),
        all if all.len() > NAMED_ORDERS => {
            let more = all.len() - NAMED_ORDERS;
            format!("orders {} and {more} more", all[..NAMED_ORDERS].join(", "))
        }
        [rest @ .., last] => format!("orders {} and {last}", rest.join(", ")),
        [] => "no order".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_named_briefly() {
        assert_eq!(name_orders(&["A"]), "order A");
        assert_eq!(name_orders(&["A", "B", "A"]), "orders A and B");
        assert_eq!(
            name_orders(&["A", "B", "C", "D", "E"]),
            "orders A, B, C and 2 more"
        );
    }
}
