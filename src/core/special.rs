//! Special-purpose ranges that no firewall should be told to allow as a cloud's addresses:
//! unspecified, loopback, link-local, multicast, reserved, documentation, and IPv6 forms of IPv4
//! addresses (IPv4-mapped `::ffff:0:0/96`, the deprecated IPv4-compatible `::/96`). A prefix of
//! Microsoft's file that lies inside one is kept in the store as published (the history stays
//! exact) but left out of every ruleset, with a warning; loaders and vendor formats disagree on
//! them (an IPv4-mapped prefix is IPv6 to nft and IPv4 to a FortiGate). A prefix that holds such
//! a range (`0.0.0.0/0`) is not special: the guard judges it as too wide.

use ipnet::IpNet;

/// The ranges, the most specific first, and what each is.
const RANGES: [(&str, &str); 15] = [
    ("0.0.0.0/8", "this-network (unspecified) IPv4"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("192.0.2.0/24", "documentation"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved (broadcast included)"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped IPv6"),
    ("::/96", "IPv4-compatible IPv6 (deprecated)"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
    ("2001:db8::/32", "documentation"),
];

/// What special-purpose range `net` lies in, if any.
pub fn kind(net: &IpNet) -> Option<&'static str> {
    RANGES.iter().find_map(|(range, what)| {
        let range: IpNet = range.parse().expect("the ranges are valid CIDRs");
        (net.prefix_len() >= range.prefix_len() && range.contains(&net.network())).then_some(*what)
    })
}

/// `net` with what it is, for warnings: `::ffff:1.2.3.4/128 (IPv4-mapped IPv6)`.
pub fn describe(net: &IpNet) -> Option<String> {
    kind(net).map(|what| format!("{net} ({what})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(text: &str) -> Option<&'static str> {
        kind(&text.parse().unwrap())
    }

    #[test]
    fn special_ranges_are_named_and_others_are_not() {
        assert_eq!(k("::ffff:1.2.3.4/128"), Some("IPv4-mapped IPv6"));
        assert_eq!(k("::ffff:0:0/96"), Some("IPv4-mapped IPv6"));
        assert_eq!(k("::1/128"), Some("loopback"));
        assert_eq!(k("::/128"), Some("unspecified"));
        assert_eq!(
            k("::1.2.3.4/128"),
            Some("IPv4-compatible IPv6 (deprecated)")
        );
        assert_eq!(k("127.0.0.1/32"), Some("loopback"));
        assert_eq!(k("169.254.169.254/32"), Some("link-local"));
        assert_eq!(k("224.0.0.0/4"), Some("multicast"));
        assert_eq!(
            k("255.255.255.255/32"),
            Some("reserved (broadcast included)")
        );
        assert_eq!(k("192.0.2.0/25"), Some("documentation"));
        assert_eq!(k("2001:db8:1::/48"), Some("documentation"));
        assert_eq!(k("fe80::1/128"), Some("link-local"));
        assert_eq!(k("ff02::1/128"), Some("multicast"));
        assert_eq!(k("0.0.0.0/32"), Some("this-network (unspecified) IPv4"));
        // Wider than a special range, or outside: not special.
        for ok in [
            "0.0.0.0/0",
            "::/0",
            "20.0.0.0/8",
            "2603:1000::/40",
            "128.0.0.0/1",
            "::/64",
        ] {
            assert_eq!(k(ok), None, "{ok}");
        }
    }
}
