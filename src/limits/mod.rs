//! PROTECTION — the bounds every layer enforces against its peers: token buckets for rates,
//! bounded per-address tables, and one place that counts each limit hit and logs it at most
//! once per interval. A leaf like `routing`: it knows no protocol, and every layer may use it.

mod bucket;
mod files;
mod hits;
mod per_ip;
mod throttle;

pub use bucket::{Rate, TokenBucket};
pub use files::{auto_connection_cap, raise_file_limit};
pub use hits::{Hits, Limit};
pub use per_ip::{IpKey, PerIp};
pub use throttle::Throttle;
