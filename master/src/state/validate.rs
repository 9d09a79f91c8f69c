//! Rules for what a volume may be called and look like, checked by the service before any work and
//! again by the state machine, which has the final word.

use ferrum_proto::ErrorCode;

pub const MAX_NAME_LEN: usize = 64;
pub const MAX_REPLICAS: u8 = 5;
pub const MAX_OWNER_LEN: usize = 256;

/// Names end up in paths, URLs and mount options: letters, digits, `.`, `_` and `-`, starting with a
/// letter or digit.
pub fn volume_name(name: &str) -> Result<(), ErrorCode> {
    let bad = |why: &str| Err(ErrorCode::InvalidArgument(format!("invalid volume name {name:?}: {why}")));
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad(&format!("longer than {MAX_NAME_LEN} bytes"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("it must start with a letter or a digit");
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return bad(&format!("{c:?} is not allowed (use letters, digits, '.', '_', '-')"));
    }
    Ok(())
}

pub fn replicas(n: u8) -> Result<(), ErrorCode> {
    if (1..=MAX_REPLICAS).contains(&n) {
        Ok(())
    } else {
        Err(ErrorCode::InvalidArgument(format!("replica count {n} is out of range: use 1 to {MAX_REPLICAS}")))
    }
}

pub fn owner(owner: &str) -> Result<(), ErrorCode> {
    if owner.len() > MAX_OWNER_LEN {
        return Err(ErrorCode::InvalidArgument(format!("owner is longer than {MAX_OWNER_LEN} bytes")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["v", "vol-1", "A.b_c", "9lives"] {
            volume_name(ok).unwrap();
        }
        for bad in ["", "-x", ".hidden", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(volume_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replica_range() {
        assert!(replicas(0).is_err());
        replicas(1).unwrap();
        replicas(5).unwrap();
        let msg = replicas(6).unwrap_err().to_string();
        assert!(msg.contains("1 to 5"), "{msg}");
    }
}
