//! Only tests live in this crate (`tests/e2e`).
