//! One module per `virtnet` command.

pub mod format;
pub mod validate;
