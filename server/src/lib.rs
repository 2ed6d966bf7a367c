//! The server (being written).
pub mod verify;
