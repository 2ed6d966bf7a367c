//! The phone core (being written).
