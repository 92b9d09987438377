//! The API's JSON documents: the [`virtnet_api`] crate (shared with the `virtnet` CLI), under
//! the name the daemon's code uses.

pub use virtnet_api::domains::*;
