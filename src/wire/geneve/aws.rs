//! The options AWS Gateway Load Balancer puts on every GENEVE packet (class
//! 0x0108: endpoint id, attachment id, flow cookie), read leniently or under
//! the strict rules of `gwlb` mode, and written for tests and the generator.

use super::{GeneveError, GeneveOption, GenevePacket, OPTION_HEADER_LEN};
use crate::base::ZoneName;
use crate::wire::ethernet::ether_type;

/// Option class of the AWS Gateway Load Balancer options.
pub const AWS_OPTION_CLASS: u16 = 0x0108;
/// AWS option type 1: the GWLB endpoint id (8 bytes, big-endian u64).
pub const AWS_TYPE_ENDPOINT_ID: u8 = 1;
/// AWS option type 2: the attachment id (8 bytes, big-endian u64).
pub const AWS_TYPE_ATTACHMENT_ID: u8 = 2;
/// AWS option type 3: the flow cookie (4 bytes, big-endian u32).
pub const AWS_TYPE_FLOW_COOKIE: u8 = 3;
/// Length of the three AWS options as [`AwsOptions::to_option_bytes`] writes them.
pub const AWS_OPTIONS_LEN: usize = 3 * OPTION_HEADER_LEN + 8 + 8 + 4;

const AWS_ENDPOINT_ID: &str = "endpoint id";
const AWS_ATTACHMENT_ID: &str = "attachment id";
const AWS_FLOW_COOKIE: &str = "flow cookie";

impl<T: AsRef<[u8]>> GenevePacket<T> {
    /// The GWLB endpoint id: the first class 0x0108 type 1 option, if it holds
    /// exactly 8 bytes.
    pub fn aws_endpoint_id(&self) -> Option<u64> {
        self.aws_data(AWS_TYPE_ENDPOINT_ID).map(u64::from_be_bytes)
    }

    /// The attachment id: the first class 0x0108 type 2 option, if it holds
    /// exactly 8 bytes.
    pub fn aws_attachment_id(&self) -> Option<u64> {
        self.aws_data(AWS_TYPE_ATTACHMENT_ID)
            .map(u64::from_be_bytes)
    }

    /// The flow cookie: the first class 0x0108 type 3 option, if it holds
    /// exactly 4 bytes.
    pub fn aws_flow_cookie(&self) -> Option<u32> {
        self.aws_data(AWS_TYPE_FLOW_COOKIE).map(u32::from_be_bytes)
    }

    fn aws_data<const N: usize>(&self, typ: u8) -> Option<[u8; N]> {
        self.option(AWS_OPTION_CLASS, typ)?.data.try_into().ok()
    }

    /// The AWS options under the strict rules of `gwlb` mode (SPEC §5).
    ///
    /// Checked in this order: the O bit is clear; the payload is raw IPv4 or
    /// IPv6; walking the options in wire order, each AWS option has its length
    /// and appears once, and every other critical option is unknown; finally
    /// all three AWS options are present. Any VNI is accepted. On a view made
    /// with `new_unchecked`, a broken option walk is reported too.
    pub fn aws_options(&self) -> Result<AwsOptions, GeneveError> {
        if self.oam() {
            return Err(GeneveError::OamPacket);
        }
        let protocol = self.protocol_type();
        if protocol != ether_type::IPV4 && protocol != ether_type::IPV6 {
            return Err(GeneveError::UnsupportedProtocol(protocol));
        }
        let (mut endpoint, mut attachment, mut cookie) = (None, None, None);
        let mut walk = self.options();
        while let Some(option) = walk.next_checked() {
            let option = option?;
            match (option.class, option.typ) {
                (AWS_OPTION_CLASS, AWS_TYPE_ENDPOINT_ID) => {
                    take_once(&mut endpoint, AWS_ENDPOINT_ID, &option)?
                }
                (AWS_OPTION_CLASS, AWS_TYPE_ATTACHMENT_ID) => {
                    take_once(&mut attachment, AWS_ATTACHMENT_ID, &option)?
                }
                (AWS_OPTION_CLASS, AWS_TYPE_FLOW_COOKIE) => {
                    take_once(&mut cookie, AWS_FLOW_COOKIE, &option)?
                }
                (class, typ) if option.critical => {
                    return Err(GeneveError::UnknownCritical { class, typ })
                }
                _ => {}
            }
        }
        let missing = GeneveError::MissingAwsOption;
        Ok(AwsOptions {
            endpoint_id: u64::from_be_bytes(endpoint.ok_or(missing(AWS_ENDPOINT_ID))?),
            attachment_id: u64::from_be_bytes(attachment.ok_or(missing(AWS_ATTACHMENT_ID))?),
            flow_cookie: u32::from_be_bytes(cookie.ok_or(missing(AWS_FLOW_COOKIE))?),
        })
    }
}

/// Stores an AWS option's data the first time it is seen.
fn take_once<const N: usize>(
    slot: &mut Option<[u8; N]>,
    name: &'static str,
    option: &GeneveOption<'_>,
) -> Result<(), GeneveError> {
    if slot.is_some() {
        return Err(GeneveError::DuplicateAwsOption {
            name,
            typ: option.typ,
        });
    }
    let data = option
        .data
        .try_into()
        .map_err(|_| GeneveError::BadAwsOptionLength {
            name,
            typ: option.typ,
            expected: N,
            len: option.data.len(),
        })?;
    *slot = Some(data);
    Ok(())
}

/// The three options AWS GWLB puts on every packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AwsOptions {
    pub endpoint_id: u64,
    pub attachment_id: u64,
    pub flow_cookie: u32,
}

impl AwsOptions {
    /// The zone the endpoint id selects.
    pub fn zone(&self) -> ZoneName {
        ZoneName(self.endpoint_id)
    }

    /// The three options as TLVs (types 1, 2, 3, critical bit clear), ready
    /// for [`emit`](super::emit()).
    pub fn to_option_bytes(&self) -> [u8; AWS_OPTIONS_LEN] {
        let mut out = [0; AWS_OPTIONS_LEN];
        let options: [(u8, &[u8]); 3] = [
            (AWS_TYPE_ENDPOINT_ID, &self.endpoint_id.to_be_bytes()),
            (AWS_TYPE_ATTACHMENT_ID, &self.attachment_id.to_be_bytes()),
            (AWS_TYPE_FLOW_COOKIE, &self.flow_cookie.to_be_bytes()),
        ];
        let mut pos = 0;
        for (typ, data) in options {
            let [class_hi, class_lo] = AWS_OPTION_CLASS.to_be_bytes();
            // 8 or 4 bytes: 2 or 1 words.
            let words = (data.len() / 4) as u8;
            out[pos..pos + OPTION_HEADER_LEN].copy_from_slice(&[class_hi, class_lo, typ, words]);
            out[pos + OPTION_HEADER_LEN..pos + OPTION_HEADER_LEN + data.len()]
                .copy_from_slice(data);
            pos += OPTION_HEADER_LEN + data.len();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::geneve::testdata::*;
    use crate::wire::geneve::{emit, VNI_MAX};

    #[test]
    fn aws_header_by_hand_parses() {
        let p = GenevePacket::new_checked(&AWS[..]).unwrap();
        assert_eq!(p.header_len(), AWS_HEADER_LEN);
        assert_eq!(p.aws_endpoint_id(), Some(AWS_OPTS.endpoint_id));
        assert_eq!(p.aws_attachment_id(), Some(AWS_OPTS.attachment_id));
        assert_eq!(p.aws_flow_cookie(), Some(AWS_OPTS.flow_cookie));
        assert_eq!(p.aws_options(), Ok(AWS_OPTS));
        assert_eq!(
            p.aws_options().unwrap().zone().to_string(),
            "vpce-0123456789abcdef0"
        );
        assert_eq!(p.payload(), &[0x45, 0x00, 0x00, 0x14]);
    }

    #[test]
    fn oam_packets_parse_but_are_not_gwlb_traffic() {
        let mut bytes = AWS;
        GenevePacket::new_unchecked(&mut bytes[..]).set_oam(true);
        assert_eq!(bytes[1], 0x80);
        let p = GenevePacket::new_checked(&bytes[..]).unwrap();
        assert!(p.oam());
        assert_eq!(p.aws_endpoint_id(), Some(AWS_OPTS.endpoint_id));
        assert_eq!(p.aws_options(), Err(GeneveError::OamPacket));
    }

    #[test]
    fn unknown_critical_options_are_rejected_unknown_plain_ones_ignored() {
        let aws = [endpoint(), attachment(), cookie()].concat();
        let with = |extra: Vec<u8>| packet(ether_type::IPV4, &[aws.clone(), extra].concat());
        let unknown = |class, typ| Err(GeneveError::UnknownCritical { class, typ });

        assert_eq!(strict(&with(opt(0x0108, 0x84, &[]))), unknown(0x0108, 4));
        assert_eq!(
            strict(&with(opt(0xffff, 0xff, &[1, 2, 3, 4]))),
            unknown(0xffff, 0x7f)
        );
        assert_eq!(
            strict(&with(opt(0x0000, 0x80, &[0, 0, 0, 0x0c]))),
            unknown(0, 0)
        );
        assert_eq!(strict(&with(opt(0x0108, 0x04, &[]))), Ok(AWS_OPTS));
        assert_eq!(strict(&with(opt(0x0132, 0x7f, &[0; 8]))), Ok(AWS_OPTS));
        // The AWS options themselves are understood even when marked critical.
        let critical_aws = opt(AWS_OPTION_CLASS, 0x81, &AWS_OPTS.endpoint_id.to_be_bytes());
        let buf = packet(
            ether_type::IPV6,
            &[critical_aws, attachment(), cookie()].concat(),
        );
        assert!(GenevePacket::new_checked(&buf[..]).unwrap().critical());
        assert_eq!(strict(&buf), Ok(AWS_OPTS));
    }

    #[test]
    fn each_missing_aws_option_is_named() {
        let cases = [
            ([attachment(), cookie()].concat(), "endpoint id"),
            ([endpoint(), cookie()].concat(), "attachment id"),
            ([cookie(), endpoint()].concat(), "attachment id"),
            ([endpoint(), attachment()].concat(), "flow cookie"),
            (Vec::new(), "endpoint id"),
        ];
        for (options, name) in cases {
            let err = strict(&packet(ether_type::IPV4, &options)).unwrap_err();
            assert_eq!(err, GeneveError::MissingAwsOption(name));
            assert_eq!(
                err.to_string(),
                format!("AWS GWLB option {name} (class 0x0108) is missing")
            );
        }
    }

    #[test]
    fn wrong_aws_option_lengths() {
        let short_endpoint = opt(AWS_OPTION_CLASS, 1, &[0; 4]);
        let buf = packet(
            ether_type::IPV4,
            &[short_endpoint, attachment(), cookie()].concat(),
        );
        let err = strict(&buf).unwrap_err();
        let expected = GeneveError::BadAwsOptionLength {
            name: "endpoint id",
            typ: 1,
            expected: 8,
            len: 4,
        };
        assert_eq!(err, expected);
        assert_eq!(
            err.to_string(),
            "AWS GWLB option endpoint id (class 0x0108 type 1) carries 4 bytes of data, 8 expected"
        );
        assert_eq!(
            GenevePacket::new_checked(&buf[..])
                .unwrap()
                .aws_endpoint_id(),
            None
        );

        let long_cookie = opt(AWS_OPTION_CLASS, 3, &[0; 8]);
        let buf = packet(
            ether_type::IPV4,
            &[endpoint(), attachment(), long_cookie].concat(),
        );
        let expected = GeneveError::BadAwsOptionLength {
            name: "flow cookie",
            typ: 3,
            expected: 4,
            len: 8,
        };
        assert_eq!(strict(&buf), Err(expected));
        assert_eq!(
            GenevePacket::new_checked(&buf[..])
                .unwrap()
                .aws_flow_cookie(),
            None
        );

        let empty_attachment = opt(AWS_OPTION_CLASS, 2, &[]);
        let buf = packet(
            ether_type::IPV4,
            &[endpoint(), empty_attachment, cookie()].concat(),
        );
        let expected = GeneveError::BadAwsOptionLength {
            name: "attachment id",
            typ: 2,
            expected: 8,
            len: 0,
        };
        assert_eq!(strict(&buf), Err(expected));
    }

    #[test]
    fn duplicate_aws_option_is_rejected_in_strict_mode() {
        let second = opt(AWS_OPTION_CLASS, 3, &[0, 0, 0, 1]);
        let buf = packet(
            ether_type::IPV4,
            &[endpoint(), attachment(), cookie(), second].concat(),
        );
        let expected = GeneveError::DuplicateAwsOption {
            name: "flow cookie",
            typ: 3,
        };
        assert_eq!(strict(&buf), Err(expected));
        // The lenient accessor takes the first.
        let p = GenevePacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.aws_flow_cookie(), Some(AWS_OPTS.flow_cookie));
    }

    #[test]
    fn gwlb_carries_raw_ip_with_any_vni() {
        let options = AWS_OPTS.to_option_bytes();
        assert_eq!(strict(&packet(ether_type::IPV6, &options)), Ok(AWS_OPTS));
        let err = strict(&packet(ether_type::TRANS_ETHER, &options)).unwrap_err();
        assert_eq!(err, GeneveError::UnsupportedProtocol(0x6558));
        assert_eq!(
            err.to_string(),
            "GENEVE protocol type 0x6558 is not raw IPv4 (0x0800) or raw IPv6 (0x86dd), \
             the only inner packets GWLB sends"
        );
        let mut buf = [0u8; AWS_HEADER_LEN];
        emit(&mut buf, VNI_MAX, ether_type::IPV4, &options).unwrap();
        let p = GenevePacket::new_checked(&buf[..]).unwrap();
        assert_eq!((p.vni(), p.aws_options()), (0xff_ffff, Ok(AWS_OPTS)));
    }
}
