//! Source address allowlists: IPs, CIDR ranges and Intercom's published egress addresses.
//!
//! Parsed once from the configuration form, a comma-separated list such as
//! `intercom-us, 10.0.0.0/8, 2001:db8::1`. IPv4-mapped IPv6 sources
//! (`::ffff:a.b.c.d`) match their IPv4 entries. A region name stands for the
//! ranges Intercom publishes for that region ([`published_ranges`] reads its
//! file); the addresses compiled in here are the fallback while that file
//! cannot be read.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

/// Intercom's published webhook egress addresses, by hosting region: the
/// fallback when the region's published file cannot be read.
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

/// The service tag of the entries that are webhook (outbound) sources.
pub const OUTBOUND_SERVICE: &str = "INTERCOM-OUTBOUND";

/// One of Intercom's hosting regions, named in the list as `intercom-us`,
/// `intercom-eu` or `intercom-au`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntercomRegion {
    Us,
    Eu,
    Au,
}

impl IntercomRegion {
    const ALL: [Self; 3] = [Self::Us, Self::Eu, Self::Au];

    /// The name in the list: `intercom-us`, ...
    pub fn name(self) -> &'static str {
        INTERCOM_REGIONS[self as usize].0
    }

    /// The region's folder in Intercom's published files: `us`, `eu`, `au`.
    pub fn folder(self) -> &'static str {
        &self.name()["intercom-".len()..]
    }

    /// The URL of the region's published ranges under `base`
    /// (`https://static.intercomcdn.com/intercom-ips` for Intercom's own).
    pub fn ranges_url(self, base: &str) -> String {
        format!(
            "{}/{}/intercom-ip-ranges.json",
            base.trim_end_matches('/'),
            self.folder()
        )
    }

    /// The addresses compiled in: the fallback.
    pub fn compiled(self) -> Vec<IpNet> {
        INTERCOM_REGIONS[self as usize]
            .1
            .iter()
            .filter_map(|a| parse_net(a))
            .collect()
    }

    fn from_name(entry: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|region| entry.eq_ignore_ascii_case(region.name()))
    }
}

/// A region's published ranges file that cannot serve as an allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishedRangesError {
    /// Not JSON of the published shape (`{"ip_ranges": [...]}`).
    Malformed(String),
    /// An `INTERCOM-OUTBOUND` entry whose range is not a CIDR range or address.
    InvalidRange(String),
    /// No `INTERCOM-OUTBOUND` entry at all: an empty allowlist would refuse
    /// every delivery.
    NoOutboundRanges,
}

impl fmt::Display for PublishedRangesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "not a published ranges file: {e}"),
            Self::InvalidRange(r) => write!(f, "`{r}` is not an IP range"),
            Self::NoOutboundRanges => write!(f, "no {OUTBOUND_SERVICE} range in the file"),
        }
    }
}

impl std::error::Error for PublishedRangesError {}

/// A region's published webhook sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedRanges {
    pub networks: Vec<IpNet>,
    /// The file's own `date`, when it has one.
    pub date: Option<String>,
}

#[derive(Deserialize)]
struct RangesFile {
    ip_ranges: Vec<RangeEntry>,
    #[serde(default)]
    date: Option<String>,
}

#[derive(Deserialize)]
struct RangeEntry {
    range: String,
    #[serde(default)]
    service: Option<String>,
}

/// Reads a region's published file,
/// `{"ip_ranges":[{"range":"34.197.76.213/32","region":"US","service":"INTERCOM-OUTBOUND"}],"date":"2025-07-25"}`:
/// the `INTERCOM-OUTBOUND` entries' ranges. A file that is malformed, has a
/// range that does not parse, or has no such entry is an error, never an
/// empty list.
pub fn published_ranges(body: &[u8]) -> Result<PublishedRanges, PublishedRangesError> {
    let file: RangesFile =
        serde_json::from_slice(body).map_err(|e| PublishedRangesError::Malformed(e.to_string()))?;
    let mut networks = Vec::new();
    for entry in file
        .ip_ranges
        .iter()
        .filter(|e| e.service.as_deref() == Some(OUTBOUND_SERVICE))
    {
        let net = parse_net(entry.range.trim())
            .ok_or_else(|| PublishedRangesError::InvalidRange(entry.range.clone()))?;
        networks.push(net);
    }
    if networks.is_empty() {
        return Err(PublishedRangesError::NoOutboundRanges);
    }
    Ok(PublishedRanges {
        networks,
        date: file.date,
    })
}

/// A CIDR range (its host bits cleared) or a single address.
fn parse_net(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>()
        .map(|net| net.trunc())
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .ok()
}

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

/// The set of source addresses allowed to deliver webhooks: the list's
/// addresses and ranges, and its region names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFilter {
    networks: Vec<IpNet>,
    regions: Vec<IntercomRegion>,
}

impl SourceFilter {
    /// Parses the comma-separated configuration form. Blank entries are ignored;
    /// a list with no entry at all is an error, as it would refuse everyone.
    pub fn parse(list: &str) -> Result<Self, InvalidSourceEntry> {
        let mut networks = Vec::new();
        let mut regions = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Some(region) = IntercomRegion::from_name(entry) {
                if !regions.contains(&region) {
                    regions.push(region);
                }
            } else if let Some(net) = parse_net(entry) {
                networks.push(net);
            } else {
                return Err(InvalidSourceEntry(entry.to_owned()));
            }
        }
        if networks.is_empty() && regions.is_empty() {
            return Err(InvalidSourceEntry(list.to_owned()));
        }
        Ok(Self { networks, regions })
    }

    /// The region names of the list.
    pub fn regions(&self) -> &[IntercomRegion] {
        &self.regions
    }

    /// Whether `source` may deliver, each region standing for its compiled
    /// addresses. An unknown source is never allowed.
    pub fn allows(&self, source: Option<IpAddr>) -> bool {
        self.allows_with(source, |_| None)
    }

    /// Whether `source` may deliver, each region standing for the ranges
    /// `published` gives for it, or its compiled addresses where it gives none.
    pub fn allows_with<'a>(
        &self,
        source: Option<IpAddr>,
        published: impl Fn(IntercomRegion) -> Option<&'a [IpNet]>,
    ) -> bool {
        let Some(source) = source else { return false };
        let source = match source {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(source, IpAddr::V4),
            v4 => v4,
        };
        if self.networks.iter().any(|net| net.contains(&source)) {
            return true;
        }
        self.regions.iter().any(|&region| match published(region) {
            Some(networks) => networks.iter().any(|net| net.contains(&source)),
            None => region.compiled().iter().any(|net| net.contains(&source)),
        })
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

    #[test]
    fn published_ranges_replace_the_compiled_list_only_where_given() {
        let filter = SourceFilter::parse("intercom-us, 10.0.0.0/8").expect("valid");
        assert_eq!(filter.regions(), [IntercomRegion::Us]);
        let published: Vec<IpNet> = vec!["198.51.100.0/24".parse().expect("net")];
        let given = |r: IntercomRegion| (r == IntercomRegion::Us).then_some(published.as_slice());
        assert!(filter.allows_with(ip("198.51.100.7"), given));
        assert!(
            !filter.allows_with(ip("34.231.68.152"), given),
            "the file, once read, is the list"
        );
        assert!(
            filter.allows_with(ip("10.9.9.9"), given),
            "explicit entries stay"
        );
        assert!(
            filter.allows_with(ip("34.231.68.152"), |_| None),
            "compiled fallback"
        );
        assert!(!filter.allows_with(ip("198.51.100.7"), |_| None));
    }

    #[test]
    fn region_urls_follow_intercoms_layout() {
        assert_eq!(
            IntercomRegion::Eu.ranges_url("https://static.intercomcdn.com/intercom-ips/"),
            "https://static.intercomcdn.com/intercom-ips/eu/intercom-ip-ranges.json"
        );
        assert_eq!(IntercomRegion::Au.name(), "intercom-au");
        assert_eq!(IntercomRegion::Us.compiled().len(), 6);
    }

    #[test]
    fn a_published_file_gives_its_outbound_ranges() {
        let body = br#"{"ip_ranges":[
            {"range":"34.197.76.213/32","region":"US","service":"INTERCOM-OUTBOUND"},
            {"range":"198.51.100.9/24","region":"US","service":"INTERCOM-OUTBOUND"},
            {"range":"2001:db8::/32","region":"US","service":"INTERCOM-OUTBOUND"},
            {"range":"203.0.113.0/24","region":"US","service":"INTERCOM-INBOUND"},
            {"range":"192.0.2.1","region":"US","service":"INTERCOM-OUTBOUND"}
        ],"date":"2025-07-25"}"#;
        let ranges = published_ranges(body).expect("valid");
        let nets: Vec<String> = ranges.networks.iter().map(ToString::to_string).collect();
        assert_eq!(
            nets,
            [
                "34.197.76.213/32",
                "198.51.100.0/24",
                "2001:db8::/32",
                "192.0.2.1/32"
            ]
        );
        assert_eq!(ranges.date.as_deref(), Some("2025-07-25"));
    }

    #[test]
    fn a_malformed_or_empty_file_is_an_error_never_an_empty_list() {
        for (body, expected) in [
            (&b"<html>503</html>"[..], "not a published ranges file"),
            (b"{\"ip_ranges\": 3}", "not a published ranges file"),
            (b"{\"ip_ranges\": []}", "no INTERCOM-OUTBOUND range"),
            (
                b"{\"ip_ranges\": [{\"range\":\"1.2.3.4/32\",\"service\":\"INTERCOM-INBOUND\"}]}",
                "no INTERCOM-OUTBOUND range",
            ),
            (
                b"{\"ip_ranges\": [{\"range\":\"1.2.3.4/40\",\"service\":\"INTERCOM-OUTBOUND\"}]}",
                "`1.2.3.4/40` is not an IP range",
            ),
            (b"", "not a published ranges file"),
        ] {
            let err = published_ranges(body).expect_err(expected);
            assert!(err.to_string().contains(expected), "{err}");
        }
    }
}
