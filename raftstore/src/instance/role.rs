//! Which kind of Ferrum service an instance is.

use std::fmt;

/// The kind of service; several instances of each may run on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Master,
    Metanode,
    Datanode,
    /// Test apps and tools that reuse the plumbing without being one of the three services.
    Other(&'static str),
}

impl Role {
    /// The lowercase name used in logs, metrics labels, the IDENTITY file and `ferrum-<role>` messages.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Metanode => "metanode",
            Role::Datanode => "datanode",
            Role::Other(name) => name,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(Role::Master.as_str(), "master");
        assert_eq!(Role::Metanode.to_string(), "metanode");
        assert_eq!(Role::Datanode.as_str(), "datanode");
        assert_eq!(Role::Other("bench").as_str(), "bench");
    }
}
