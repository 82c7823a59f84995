//! Input and output: capture files, and (live modes) devices and sockets.
pub mod capture;
