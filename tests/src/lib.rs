//! Network-namespace labs for xvs's end-to-end tests and `make demo`.
//!
//! A `Lab` makes its own namespaces with names unique to this process, starts real
//! programs in them (nginx, python, curl, xvs), and deletes everything when dropped, also
//! when a test panics. Namespaces left by a killed run are removed by the next one.
//! All traffic stays inside the namespaces a lab made.

pub mod dr;
pub mod ecmp;
pub mod fullnat;
pub mod hiccup;
mod lab;
pub mod metrics;
pub mod tools;
pub mod vrrp;

pub use lab::{Lab, Proc};
