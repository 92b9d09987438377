//! API types of the network endpoints: [`virtnet_api::networks`].

pub use virtnet_api::networks::*;
