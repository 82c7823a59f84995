//! The appliance's sockets, as `returns.rs`, the tests and the load
//! generator name them: they live in [`crate::io::udp`] (receiving,
//! returning) and [`crate::io::waker`] (waking a parked worker).

pub use crate::io::sys::{open_files_limit, set_recv_buffer, set_send_buffer};
pub use crate::io::udp::*;
pub use crate::io::waker::{wait, Waker};
