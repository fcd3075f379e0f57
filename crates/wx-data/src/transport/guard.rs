//! The SSRF guard: which IP addresses a miner store may live at.
//!
//! Miner store URLs point at addresses the miner chose (its on-chain axon), so a fetch could be
//! aimed at our own network: loopback services, the cloud metadata endpoint, private ranges.
//! [`AddressPolicy::check`] refuses every address that is not globally routable unicast,
//! including IPv4 addresses embedded in IPv6 (IPv4-mapped, IPv4-compatible, NAT64, 6to4,
//! Teredo). An explicit allow-list of [`Cidr`]s overrides the refusal (tests and the demo run
//! miners on 127.0.0.1: [`AddressPolicy::allow_loopback`]).
//!
//! [`GuardedResolver`] applies the policy inside the HTTP client's DNS step: the host is
//! resolved once, every address is vetted, and the client connects only to the addresses the
//! resolver returned — there is no second resolution a DNS-rebinding server could answer
//! differently. IP-literal hosts never reach a resolver, so the HTTP layer checks them with the
//! same policy before sending.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForbiddenReason {
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 private ranges `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// Carrier-grade NAT shared space `100.64.0.0/10`.
    SharedAddressSpace,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud metadata or host-agent address (`169.254.169.254`, `fd00:ec2::254`,
    /// `100.100.100.200`, `168.63.129.16`).
    CloudMetadata,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// Documentation ranges (`192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`,
    /// `3fff::/20`).
    Documentation,
    /// Benchmarking ranges (`198.18.0.0/15`, `2001:2::/48`).
    Benchmarking,
    /// IETF protocol assignments and reserved space (`192.0.0.0/24`, `240.0.0.0/4`,
    /// `192.88.99.0/24`, `100::/64`, `2001::/23` outside the ranges above, `fec0::/10`).
    Reserved,
    /// IPv6 unique local addresses `fc00::/7`.
    UniqueLocal,
    /// IPv6 ranges that embed an IPv4 address we cannot vet (Teredo `2001::/32`, NAT64
    /// local-use `64:ff9b:1::/48`).
    OpaqueTranslation,
}

impl fmt::Display for ForbiddenReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ForbiddenReason::Unspecified => "unspecified address",
            ForbiddenReason::Loopback => "loopback address",
            ForbiddenReason::Private => "private address",
            ForbiddenReason::SharedAddressSpace => "carrier-grade NAT address",
            ForbiddenReason::LinkLocal => "link-local address",
            ForbiddenReason::CloudMetadata => "cloud metadata address",
            ForbiddenReason::Multicast => "multicast address",
            ForbiddenReason::Broadcast => "broadcast address",
            ForbiddenReason::Documentation => "documentation address",
            ForbiddenReason::Benchmarking => "benchmarking address",
            ForbiddenReason::Reserved => "reserved address",
            ForbiddenReason::UniqueLocal => "unique-local IPv6 address",
            ForbiddenReason::OpaqueTranslation => "IPv6 translation address",
        };
        f.write_str(text)
    }
}

/// Classifies an address: `Some(reason)` if a miner store must not be fetched from it.
pub fn forbidden_reason(ip: IpAddr) -> Option<ForbiddenReason> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<ForbiddenReason> {
    let [a, b, c, d] = ip.octets();
    let reason = match (a, b, c, d) {
        (169, 254, 169, 254) | (100, 100, 100, 200) | (168, 63, 129, 16) => {
            ForbiddenReason::CloudMetadata
        }
        (0, ..) => ForbiddenReason::Unspecified,
        (127, ..) => ForbiddenReason::Loopback,
        (10, ..) => ForbiddenReason::Private,
        (172, 16..=31, ..) => ForbiddenReason::Private,
        (192, 168, ..) => ForbiddenReason::Private,
        (100, 64..=127, ..) => ForbiddenReason::SharedAddressSpace,
        (169, 254, ..) => ForbiddenReason::LinkLocal,
        (192, 0, 0, _) => ForbiddenReason::Reserved,
        (192, 0, 2, _) | (198, 51, 100, _) | (203, 0, 113, _) => ForbiddenReason::Documentation,
        (192, 88, 99, _) => ForbiddenReason::Reserved,
        (198, 18..=19, ..) => ForbiddenReason::Benchmarking,
        (224..=239, ..) => ForbiddenReason::Multicast,
        (255, 255, 255, 255) => ForbiddenReason::Broadcast,
        (240..=255, ..) => ForbiddenReason::Reserved,
        _ => return None,
    };
    Some(reason)
}

fn embedded_v4(bits: u128, shift: u32) -> Ipv4Addr {
    Ipv4Addr::from(((bits >> shift) & 0xffff_ffff) as u32)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<ForbiddenReason> {
    let bits = u128::from(ip);
    let in_prefix = |prefix: u128, len: u32| len == 0 || (bits ^ prefix) >> (128 - len) == 0;
    if ip.is_unspecified() {
        return Some(ForbiddenReason::Unspecified);
    }
    if ip.is_loopback() {
        return Some(ForbiddenReason::Loopback);
    }
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        return Some(ForbiddenReason::CloudMetadata);
    }
    // IPv4-mapped ::ffff:0:0/96 and the deprecated IPv4-compatible ::/96: judge the IPv4 inside.
    if in_prefix(0xffff_0000_0000, 96) || in_prefix(0, 96) {
        return forbidden_v4(embedded_v4(bits, 0));
    }
    // NAT64 well-known prefix 64:ff9b::/96 embeds the IPv4 target in the last 32 bits.
    if in_prefix(0x0064_ff9b_u128 << 96, 96) {
        return forbidden_v4(embedded_v4(bits, 0));
    }
    // NAT64 local-use 64:ff9b:1::/48: the embedding depends on the operator's prefix length.
    if in_prefix(0x0064_ff9b_0001_u128 << 80, 48) {
        return Some(ForbiddenReason::OpaqueTranslation);
    }
    // 6to4 2002::/16 embeds the IPv4 address in bits 16..48.
    if in_prefix(0x2002_u128 << 112, 16) {
        return forbidden_v4(embedded_v4(bits, 80));
    }
    // Teredo 2001::/32 embeds an obfuscated client address.
    if in_prefix(0x2001_0000_u128 << 96, 32) {
        return Some(ForbiddenReason::OpaqueTranslation);
    }
    let reason = if in_prefix(0x2001_0db8_u128 << 96, 32) || in_prefix(0x3fff_u128 << 112, 20) {
        ForbiddenReason::Documentation
    } else if in_prefix(0x2001_0002_0000_u128 << 80, 48) {
        ForbiddenReason::Benchmarking
    } else if in_prefix(0x2001_u128 << 112, 23) || in_prefix(0x0100_u128 << 112, 64) {
        ForbiddenReason::Reserved
    } else if in_prefix(0xfc_u128 << 120, 7) {
        ForbiddenReason::UniqueLocal
    } else if in_prefix(0xfe80_u128 << 112, 10) {
        ForbiddenReason::LinkLocal
    } else if in_prefix(0xfec0_u128 << 112, 10) {
        ForbiddenReason::Reserved
    } else if in_prefix(0xff_u128 << 120, 8) {
        ForbiddenReason::Multicast
    } else {
        return None;
    };
    Some(reason)
}

/// An IP network in CIDR notation (`127.0.0.0/8`, `::1/128`; a bare address means one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

/// A CIDR string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR {text:?}: expected ADDRESS/PREFIX_LENGTH such as 127.0.0.0/8 or ::1/128")]
pub struct CidrParseError {
    /// The rejected text.
    pub text: String,
}

impl Cidr {
    /// The network `address/prefix_len`; host bits of `address` are ignored.
    pub fn new(address: IpAddr, prefix_len: u8) -> Option<Cidr> {
        let max = match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        (prefix_len <= max).then_some(Cidr {
            network: address,
            prefix_len,
        })
    }

    /// Whether `ip` lies in this network. IPv4-mapped IPv6 addresses are compared as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_matches(
                u32::from(net).into(),
                u32::from(ip).into(),
                self.prefix_len,
                32,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_matches(u128::from(net), u128::from(ip), self.prefix_len, 128)
            }
            _ => false,
        }
    }
}

fn prefix_matches(net: u128, ip: u128, prefix_len: u8, width: u32) -> bool {
    let prefix_len = u32::from(prefix_len);
    prefix_len == 0 || (net ^ ip) >> (width - prefix_len) == 0
}

impl FromStr for Cidr {
    type Err = CidrParseError;

    fn from_str(text: &str) -> Result<Cidr, CidrParseError> {
        let err = || CidrParseError {
            text: text.to_owned(),
        };
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let address: IpAddr = addr.trim().parse().map_err(|_| err())?;
        let prefix_len = match len {
            Some(len) => len.trim().parse::<u8>().map_err(|_| err())?,
            None if address.is_ipv4() => 32,
            None => 128,
        };
        Cidr::new(address, prefix_len).ok_or_else(err)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// Which addresses may be connected to: public unicast only, plus an explicit allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed: Vec<Cidr>,
}

/// An address refused by the [`AddressPolicy`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refused to connect to {host} at {ip}: {reason} (only public addresses are allowed unless allow-listed)"
)]
pub struct AddressRefused {
    /// The host name or literal from the URL.
    pub host: String,
    /// The refused address.
    pub ip: IpAddr,
    /// Why it is refused.
    pub reason: ForbiddenReason,
}

impl AddressPolicy {
    /// Public unicast addresses only (the production policy for miner stores).
    pub fn public_only() -> AddressPolicy {
        AddressPolicy::default()
    }

    /// Also allows `127.0.0.0/8` and `::1` (tests and the demo).
    pub fn allow_loopback(self) -> AddressPolicy {
        self.allow(Cidr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8).expect("valid"))
            .allow(Cidr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 128).expect("valid"))
    }

    /// Also allows every address in `network`.
    pub fn allow(mut self, network: Cidr) -> AddressPolicy {
        if !self.allowed.contains(&network) {
            self.allowed.push(network);
        }
        self
    }

    /// The allow-list.
    pub fn allowed(&self) -> &[Cidr] {
        &self.allowed
    }

    /// `Ok` if `ip` may be connected to.
    pub fn check(&self, ip: IpAddr) -> Result<(), ForbiddenReason> {
        if self.allowed.iter().any(|net| net.contains(ip)) {
            return Ok(());
        }
        match forbidden_reason(ip) {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }

    /// Checks every address a host resolved to; the first refused one is reported.
    pub fn check_all(&self, host: &str, addresses: &[IpAddr]) -> Result<(), AddressRefused> {
        for &ip in addresses {
            self.check(ip).map_err(|reason| AddressRefused {
                host: host.to_owned(),
                ip,
                reason,
            })?;
        }
        Ok(())
    }
}

/// No address at all for a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} did not resolve to any address")]
pub struct NoAddress {
    /// The host name.
    pub host: String,
}

/// A `reqwest` DNS resolver that vets every address with an [`AddressPolicy`].
///
/// A host is refused as a whole if any of its addresses is refused (a name that resolves to
/// both a public and a private address is not trusted with either). The client connects only to
/// the addresses returned here.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl GuardedResolver {
    /// A resolver applying `policy`.
    pub fn new(policy: AddressPolicy) -> GuardedResolver {
        GuardedResolver {
            policy: Arc::new(policy),
        }
    }

    /// Resolves `host` with the system resolver and vets the result.
    pub async fn resolve_vetted(
        &self,
        host: &str,
    ) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
        if addrs.is_empty() {
            return Err(Box::new(NoAddress {
                host: host.to_owned(),
            }));
        }
        let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
        self.policy.check_all(host, &ips)?;
        Ok(addrs)
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = this.resolve_vetted(&host).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> Option<ForbiddenReason> {
        forbidden_reason(text.parse().unwrap())
    }

    #[test]
    fn refuses_non_public_ipv4() {
        use ForbiddenReason::*;
        let cases = [
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.254", SharedAddressSpace),
            ("169.254.1.1", LinkLocal),
            ("169.254.169.254", CloudMetadata),
            ("100.100.100.200", CloudMetadata),
            ("168.63.129.16", CloudMetadata),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("255.255.255.255", Broadcast),
            ("240.0.0.1", Reserved),
            ("192.0.0.8", Reserved),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("198.18.0.1", Benchmarking),
        ];
        for (ip, expected) in cases {
            assert_eq!(reason(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn accepts_public_ipv4_next_to_the_refused_ranges() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.255.255",
            "192.169.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "11.0.0.1",
        ] {
            assert_eq!(reason(ip), None, "{ip}");
        }
    }

    #[test]
    fn refuses_non_public_ipv6_and_embedded_ipv4() {
        use ForbiddenReason::*;
        let cases = [
            ("::", Unspecified),
            ("::1", Loopback),
            ("fd00:ec2::254", CloudMetadata),
            ("fd12:3456::1", UniqueLocal),
            ("fc00::1", UniqueLocal),
            ("fe80::1", LinkLocal),
            ("fec0::1", Reserved),
            ("ff02::1", Multicast),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("2001:2::1", Benchmarking),
            ("100::1", Reserved),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", CloudMetadata),
            ("::ffff:10.0.0.1", Private),
            ("::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:a9fe", CloudMetadata),
            ("64:ff9b::c0a8:0101", Private),
            ("64:ff9b:1::1", OpaqueTranslation),
            ("2002:7f00:0001::1", Loopback),
            ("2002:a9fe:a9fe::1", CloudMetadata),
            ("2001:0:4136:e378::1", OpaqueTranslation),
        ];
        for (ip, expected) in cases {
            assert_eq!(reason(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn accepts_public_ipv6_and_public_embedded_ipv4() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert_eq!(reason(ip), None, "{ip}");
        }
    }

    #[test]
    fn cidr_parses_and_matches() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.1".parse().unwrap()));
        let host: Cidr = "::1".parse().unwrap();
        assert_eq!(host.to_string(), "::1/128");
        assert!(host.contains("::1".parse().unwrap()));
        assert!(!host.contains("::2".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.5".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense/8".parse::<Cidr>().is_err());
    }

    #[test]
    fn allow_list_overrides_only_what_it_lists() {
        let policy = AddressPolicy::public_only().allow_loopback();
        assert_eq!(policy.check("127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(policy.check("::1".parse().unwrap()), Ok(()));
        assert_eq!(policy.check("::ffff:127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(
            policy.check("169.254.169.254".parse().unwrap()),
            Err(ForbiddenReason::CloudMetadata)
        );
        assert_eq!(
            policy.check("10.0.0.1".parse().unwrap()),
            Err(ForbiddenReason::Private)
        );
        assert_eq!(
            AddressPolicy::public_only().check("127.0.0.1".parse().unwrap()),
            Err(ForbiddenReason::Loopback)
        );
    }

    #[test]
    fn one_bad_address_refuses_the_host() {
        let policy = AddressPolicy::public_only();
        let err = policy
            .check_all(
                "mixed.example",
                &["8.8.8.8".parse().unwrap(), "10.0.0.1".parse().unwrap()],
            )
            .unwrap_err();
        assert_eq!(err.ip, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(err.reason, ForbiddenReason::Private);
        assert!(err.to_string().contains("mixed.example"));
    }

    #[tokio::test]
    async fn resolver_refuses_localhost_unless_allowed() {
        let strict = GuardedResolver::new(AddressPolicy::public_only());
        let err = strict.resolve_vetted("localhost").await.unwrap_err();
        let refused = err
            .downcast_ref::<AddressRefused>()
            .expect("AddressRefused");
        assert_eq!(refused.reason, ForbiddenReason::Loopback);
        let relaxed = GuardedResolver::new(AddressPolicy::public_only().allow_loopback());
        let addrs = relaxed.resolve_vetted("localhost").await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
