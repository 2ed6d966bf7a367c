//! Orders as they reached the phone through sync.

use flexwork_sync::OrderSummary;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::ClientError;

/// An order on the device: the server's summary plus where the local evidence stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Order {
    pub summary: OrderSummary,
    /// Evidence was recorded since the server last acknowledged the document.
    pub unsynced: bool,
    /// The server refused this document's last sync message: its code and message.
    pub rejection: Option<(String, String)>,
}

/// Inserts or replaces orders; returns the ids that were not known before.
pub(crate) fn upsert(
    conn: &Connection,
    orders: &[OrderSummary],
    now_ms: i64,
) -> Result<Vec<String>, ClientError> {
    let mut added = Vec::new();
    for order in orders {
        let json = serde_json::to_string(order)
            .map_err(|e| ClientError::Corrupt(format!("order summary: {e}")))?;
        if !exists(conn, &order.order_id)? {
            added.push(order.order_id.clone());
        }
        conn.execute(
            "INSERT INTO orders (order_id, summary, updated_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (order_id) DO UPDATE SET summary = ?2, updated_at_ms = ?3",
            params![order.order_id, json, now_ms],
        )?;
    }
    Ok(added)
}

pub(crate) fn exists(conn: &Connection, order_id: &str) -> Result<bool, ClientError> {
    let sql = "SELECT 1 FROM orders WHERE order_id = ?1";
    let found: Option<i64> = conn
        .prepare_cached(sql)?
        .query_row([order_id], |row| row.get(0))
        .optional()?;
    Ok(found.is_some())
}

/// Fails with [`ClientError::UnknownOrder`] unless the order reached this device.
pub(crate) fn ensure(conn: &Connection, order_id: &str) -> Result<(), ClientError> {
    match exists(conn, order_id)? {
        true => Ok(()),
        false => Err(ClientError::UnknownOrder(order_id.to_owned())),
    }
}

const SELECT_ORDERS: &str = "SELECT o.summary, COALESCE(d.dirty, 0), d.rejected_code,
        d.rejected_message
    FROM orders o LEFT JOIN documents d ON d.order_id = o.order_id";

/// All orders, by order id.
pub(crate) fn list(conn: &Connection) -> Result<Vec<Order>, ClientError> {
    read(conn, &format!("{SELECT_ORDERS} ORDER BY o.order_id"), [])
}

/// One order, if the device has it.
pub(crate) fn get(conn: &Connection, order_id: &str) -> Result<Option<Order>, ClientError> {
    let sql = format!("{SELECT_ORDERS} WHERE o.order_id = ?1");
    Ok(read(conn, &sql, [order_id])?.pop())
}

fn read(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Order>, ClientError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
    })?;

    let mut orders = Vec::new();
    for row in rows {
        let (json, dirty, code, message): (String, bool, Option<String>, Option<String>) = row?;
        let summary = serde_json::from_str(&json)
            .map_err(|e| ClientError::Corrupt(format!("order summary: {e}")))?;
        let rejection = code.map(|c| (c, message.unwrap_or_default()));
        orders.push(Order {
            summary,
            unsynced: dirty,
            rejection,
        });
    }
    Ok(orders)
}
