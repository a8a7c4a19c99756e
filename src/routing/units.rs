//! Durations ("25s", "500ms") and sizes (1000000, "1MB", "64KB", "1MiB") as the contract
//! writes them.

use std::time::Duration;

/// Parse a duration: a whole number followed by `ms`, `s`, `m` or `h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| {
        format!("`{text}` has no unit; expected a duration like \"25s\" or \"500ms\"")
    })?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| {
        format!("`{text}` is not a duration; expected a duration like \"25s\" or \"500ms\"")
    })?;
    let too_large = || format!("`{text}` is too long a duration");
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(too_large)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(too_large)?),
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`; expected ms, s, m or h"
            ));
        }
    };
    Ok(d)
}

/// Parse a size: bytes, or a number with `B`, `KB`, `MB`, `GB` (powers of 1000) or `KiB`,
/// `MiB`, `GiB` (powers of 1024).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: usize = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size; expected bytes or a size like \"1MB\""))?;
    let factor: usize = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            const UNITS: [&str; 7] = ["B", "KB", "MB", "GB", "KiB", "MiB", "GiB"];
            let hint = super::file::did_you_mean(other, UNITS)
                .map(|u| format!("did you mean `{number}{u}`? "))
                .unwrap_or_default();
            return Err(format!(
                "unknown unit `{other}` in `{text}`; {hint}expected B, KB, MB, GB, KiB, MiB or GiB"
            ));
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("25s"), Ok(Duration::from_secs(25)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("25").unwrap_err().contains("no unit"));
        assert!(
            parse_duration("5 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_duration("s").is_err());
        assert!(
            parse_duration("18446744073709551615h")
                .unwrap_err()
                .contains("too long")
        );
        assert!(parse_duration("99999999999999999999s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("64KB"), Ok(64_000));
        assert_eq!(parse_size("1MiB"), Ok(1_048_576));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("1TB").unwrap_err().contains("unknown unit"));
        assert!(
            parse_size("64kb")
                .unwrap_err()
                .contains("did you mean `64KB`?"),
            "a unit in the wrong case is named"
        );
        assert!(parse_size("MB").is_err());
        assert!(
            parse_size("18446744073709551615GB")
                .unwrap_err()
                .contains("too large")
        );
    }
}
