//! One module per `virtnet` command.

pub mod attach_device;
pub mod attach_interface;
pub mod chardev_change;
pub mod completions;
pub mod console;
pub mod define;
pub mod detach_device;
pub mod detach_interface;
pub mod device_scope;
pub mod domif_setlink;
pub mod domiflist;
pub mod domifstat;
pub mod dominfo;
pub mod domxml_to_native;
pub mod dumpxml;
pub mod format;
pub mod list;
pub mod man;
pub mod net;
pub mod qemu_monitor_command;
pub mod remote;
pub mod shutdown;
pub mod start;
pub mod undefine;
pub mod update_device;
pub mod validate;
