//! Waking a worker that waits on its socket: an `eventfd` it waits on too.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use super::sys;

/// Wakes a worker parked in [`wait`].
#[derive(Debug)]
pub struct Waker {
    counter: File,
}

impl Waker {
    pub fn new() -> io::Result<Waker> {
        Ok(Waker {
            counter: File::from(sys::eventfd()?),
        })
    }

    pub fn wake(&self) {
        // A full counter (EAGAIN) means a wake-up is pending anyway.
        let _ = (&self.counter).write(&1u64.to_ne_bytes());
    }

    fn drain(&self) {
        let mut n = [0u8; 8];
        let _ = (&self.counter).read(&mut n);
    }
}

/// Blocks until `socket` is readable, `waker` is woken, or `timeout` passes.
pub fn wait(socket: BorrowedFd, waker: &Waker, timeout: Duration) -> io::Result<()> {
    let revents = sys::poll([socket, waker.counter.as_fd()], libc::POLLIN, timeout)?;
    if revents[1] != 0 {
        waker.drain();
    }
    Ok(())
}
