//! Evidence verification (being written).
