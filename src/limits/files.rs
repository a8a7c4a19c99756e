//! The process's open-file limit, and the connection cap that follows from it: idle
//! sockets must never take the last descriptors, or `/healthz`, the admin port and every
//! new client are locked out.

/// Raise the soft limit on open files to the hard limit (as servers commonly do); returns
/// the soft limit in force afterwards.
pub fn raise_file_limit() -> Option<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get().ok()?;
    if soft < hard && rlimit::Resource::NOFILE.set(hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

/// The cap on connections (and on sessions) when `[limits] max_connections` is not set: the
/// soft file limit less a reserve of a tenth (at least 64 descriptors) for files, the admin
/// port, Redis and the refusals of clients over the cap.
pub fn auto_connection_cap() -> usize {
    let soft = rlimit::Resource::NOFILE
        .get()
        .map_or(1024, |(soft, _)| soft)
        .min(usize::MAX as u64) as usize;
    cap_for(soft)
}

fn cap_for(files: usize) -> usize {
    files.saturating_sub((files / 10).max(64)).max(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_a_reserve() {
        assert_eq!(cap_for(1024), 1024 - 102);
        assert_eq!(cap_for(20_000), 18_000);
        assert_eq!(cap_for(256), 192);
        assert_eq!(cap_for(10), 16);
        assert!(auto_connection_cap() >= 16);
    }
}
