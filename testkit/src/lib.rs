//! virtnet test utilities.
