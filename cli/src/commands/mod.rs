//! One module per `virtnet` command.

pub mod domxml_to_native;
pub mod format;
pub mod validate;
