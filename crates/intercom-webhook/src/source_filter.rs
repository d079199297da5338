//! Source address allowlists: IPs, CIDR ranges and Intercom's published egress addresses.
//!
//! Parsed once from the configuration form, a comma-separated list such as
//! `intercom-us, 10.0.0.0/8, 2001:db8::1`. IPv4-mapped IPv6 sources
//! (`::ffff:a.b.c.d`) match their IPv4 entries.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// Intercom's published webhook egress addresses, by hosting region.
pub const INTERCOM_REGIONS: [(&str, &[&str]); 3] = [
    (
        "intercom-us",
        &[
            "34.231.68.152",
            "34.197.76.213",
            "35.171.78.91",
            "35.169.138.21",
            "52.70.27.159",
            "52.44.63.161",
        ],
    ),
    (
        "intercom-eu",
        &["54.217.125.63", "54.246.173.113", "54.216.9.3"],
    ),
    (
        "intercom-au",
        &["52.63.36.185", "3.104.68.152", "52.64.2.165"],
    ),
];

/// An entry of the list that is neither an address, a CIDR range nor a region name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSourceEntry(pub String);

impl fmt::Display for InvalidSourceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an IP address, a CIDR range, or one of intercom-us, intercom-eu, intercom-au",
            self.0
        )
    }
}

impl std::error::Error for InvalidSourceEntry {}

/// The set of source addresses allowed to deliver webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFilter {
    networks: Vec<IpNet>,
}

impl SourceFilter {
    /// Parses the comma-separated configuration form. Blank entries are ignored;
    /// a list with no entry at all is an error, as it would refuse everyone.
    pub fn parse(list: &str) -> Result<Self, InvalidSourceEntry> {
        let mut networks = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Some((_, addresses)) = INTERCOM_REGIONS
                .iter()
                .find(|(name, _)| entry.eq_ignore_ascii_case(name))
            {
                networks.extend(
                    addresses
                        .iter()
                        .filter_map(|a| a.parse::<IpAddr>().ok())
                        .map(IpNet::from),
                );
            } else if let Ok(net) = entry.parse::<IpNet>() {
                networks.push(net.trunc());
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                networks.push(IpNet::from(ip));
            } else {
                return Err(InvalidSourceEntry(entry.to_owned()));
            }
        }
        if networks.is_empty() {
            return Err(InvalidSourceEntry(list.to_owned()));
        }
        Ok(Self { networks })
    }

    /// Whether `source` may deliver. An unknown source is never allowed.
    pub fn allows(&self, source: Option<IpAddr>) -> bool {
        let Some(source) = source else { return false };
        let source = match source {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(source, IpAddr::V4),
            v4 => v4,
        };
        self.networks.iter().any(|net| net.contains(&source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[test]
    fn regions_expand_to_published_addresses() {
        let filter = SourceFilter::parse("intercom-us, INTERCOM-EU").expect("valid");
        assert!(filter.allows(ip("34.231.68.152")));
        assert!(filter.allows(ip("54.216.9.3")));
        assert!(!filter.allows(ip("52.63.36.185")), "AU not listed");
        assert!(!filter.allows(ip("34.231.68.153")));
    }

    #[test]
    fn addresses_and_ranges_of_both_families() {
        let filter =
            SourceFilter::parse("10.1.0.0/16,192.0.2.7, 2001:db8::/32 ,::1").expect("valid");
        assert!(filter.allows(ip("10.1.255.3")));
        assert!(!filter.allows(ip("10.2.0.1")));
        assert!(filter.allows(ip("192.0.2.7")));
        assert!(filter.allows(ip("2001:db8:1::9")));
        assert!(filter.allows(ip("::1")));
        assert!(filter.allows(ip("::ffff:192.0.2.7")), "IPv4-mapped IPv6");
        assert!(!filter.allows(None), "unknown source");
    }

    #[test]
    fn host_bits_in_a_range_are_ignored() {
        let filter = SourceFilter::parse("10.1.2.3/16").expect("valid");
        assert!(filter.allows(ip("10.1.99.1")));
    }

    #[test]
    fn invalid_entries_are_named() {
        for (list, bad) in [
            ("intercom-mars", "intercom-mars"),
            ("10.0.0.0/33", "10.0.0.0/33"),
            ("1.2.3.4, nonsense", "nonsense"),
            ("256.1.1.1", "256.1.1.1"),
            (" , ", " , "),
        ] {
            let err = SourceFilter::parse(list).expect_err(list);
            assert_eq!(err, InvalidSourceEntry(bad.to_owned()));
            assert!(err.to_string().contains(bad));
        }
    }
}
