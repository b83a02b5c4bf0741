//! The DNS message format (RFC 1035 section 4): enough of it to parse a
//! query's header and question, build answers, and read the records of a
//! response. Every input is untrusted: parsing never panics, never loops
//! without bound (compression pointers must point strictly backwards and
//! their number is capped) and allocates at most in proportion to the
//! packet's length.

use std::fmt;

/// The fixed header's length.
pub const HEADER_LEN: usize = 12;
/// A name's longest wire form, the final zero length included.
pub const MAX_NAME_LEN: usize = 255;
/// A label's longest length.
pub const MAX_LABEL_LEN: usize = 63;
/// The largest UDP message a client that sent no EDNS option accepts.
pub const UDP_MAX: usize = 512;
/// At most this many compression pointers in one name.
const MAX_POINTERS: usize = 64;

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
pub const CLASS_IN: u16 = 1;

/// Header flag bits.
pub const FLAG_QR: u16 = 0x8000;
pub const FLAG_AA: u16 = 0x0400;
pub const FLAG_TC: u16 = 0x0200;
pub const FLAG_RD: u16 = 0x0100;
pub const FLAG_RA: u16 = 0x0080;
const OPCODE_MASK: u16 = 0x7800;
const RCODE_MASK: u16 = 0x000f;

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_NOTIMP: u8 = 4;
pub const RCODE_REFUSED: u8 = 5;

/// Why a packet could not be read, or a name not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The packet ends before what its header or a length announces.
    Truncated,
    /// A label longer than 63 bytes, or an empty one inside a name.
    BadLabel,
    /// A name longer than 255 bytes in its wire form.
    NameTooLong,
    /// A compression pointer that does not point strictly backwards, too
    /// many pointers, or the reserved label types 0x40 and 0x80.
    BadPointer,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::Truncated => "DNS message truncated",
            WireError::BadLabel => "DNS label empty or longer than 63 bytes",
            WireError::NameTooLong => "DNS name longer than 255 bytes",
            WireError::BadPointer => "DNS name with a bad compression pointer",
        })
    }
}

impl std::error::Error for WireError {}

/// The header's id and flags; its four counts are the lengths of a
/// [`Message`]'s sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
}

impl Header {
    pub fn is_response(&self) -> bool {
        self.flags & FLAG_QR != 0
    }

    pub fn opcode(&self) -> u8 {
        ((self.flags & OPCODE_MASK) >> 11) as u8
    }

    pub fn rcode(&self) -> u8 {
        (self.flags & RCODE_MASK) as u8
    }

    /// The flags of a reply to a query with these flags: QR set, opcode
    /// and RD copied, RA set (this resolver recurses through its
    /// upstreams), the given response code.
    pub fn reply_flags(&self, rcode: u8) -> u16 {
        FLAG_QR | (self.flags & (OPCODE_MASK | FLAG_RD)) | FLAG_RA | (rcode as u16 & RCODE_MASK)
    }
}

/// The header and its section counts, as read from a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawHeader {
    pub header: Header,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

/// Reads the fixed header; `None` when the packet is shorter than one.
pub fn parse_header(buf: &[u8]) -> Option<RawHeader> {
    let h = buf.get(..HEADER_LEN)?;
    let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    Some(RawHeader {
        header: Header {
            id: word(0),
            flags: word(2),
        },
        qdcount: word(4),
        ancount: word(6),
        nscount: word(8),
        arcount: word(10),
    })
}

/// A domain name in its uncompressed wire form: length-prefixed labels
/// ending with the zero-length root label. Case is kept as sent.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Name(Vec<u8>);

impl Name {
    /// The root name (a lone zero byte).
    pub fn root() -> Name {
        Name(vec![0])
    }

    /// Parses dotted text (`web.mynet`, an optional trailing dot; `""` or
    /// `"."` is the root). Labels are taken as bytes, without escapes.
    pub fn from_dotted(text: &str) -> Result<Name, WireError> {
        let text = text.strip_suffix('.').unwrap_or(text);
        if text.is_empty() {
            return Ok(Name::root());
        }
        let labels: Vec<&[u8]> = text.split('.').map(str::as_bytes).collect();
        Name::from_labels(&labels)
    }

    /// Builds a name from its labels (the root label left out).
    pub fn from_labels<L: AsRef<[u8]>>(labels: &[L]) -> Result<Name, WireError> {
        let mut wire = Vec::new();
        for label in labels {
            let label = label.as_ref();
            if label.is_empty() || label.len() > MAX_LABEL_LEN {
                return Err(WireError::BadLabel);
            }
            if wire.len() + 1 + label.len() + 1 > MAX_NAME_LEN {
                return Err(WireError::NameTooLong);
            }
            wire.push(label.len() as u8);
            wire.extend_from_slice(label);
        }
        wire.push(0);
        Ok(Name(wire))
    }

    /// The wire form, final zero included.
    pub fn wire(&self) -> &[u8] {
        &self.0
    }

    /// The labels, root label left out.
    pub fn labels(&self) -> Labels<'_> {
        Labels(&self.0)
    }

    /// The name as a resolver key: labels in ASCII lower case joined by
    /// dots, no trailing dot (`""` for the root). `None` when a label holds
    /// a dot, a space, a control or a non-ASCII byte: no container name
    /// can, and such a name must not be mistaken for a dotted one.
    pub fn lookup_key(&self) -> Option<String> {
        let mut out = String::with_capacity(self.0.len());
        for label in self.labels() {
            if !label.iter().all(|b| b.is_ascii_graphic() && *b != b'.') {
                return None;
            }
            if !out.is_empty() {
                out.push('.');
            }
            out.extend(label.iter().map(|b| b.to_ascii_lowercase() as char));
        }
        Some(out)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

impl fmt::Display for Name {
    /// Dotted, with a trailing dot; bytes that are not printable ASCII
    /// (and dots inside labels) escaped as `\DDD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() == 1 {
            return f.write_str(".");
        }
        for label in self.labels() {
            for &b in label {
                if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                    write!(f, "{}", b as char)?;
                } else {
                    write!(f, "\\{b:03}")?;
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

/// The labels of a [`Name`].
pub struct Labels<'a>(&'a [u8]);

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, rest) = self.0.split_first()?;
        if len == 0 {
            self.0 = &[];
            return None;
        }
        // A Name is always well formed; `get` keeps this panic-free anyway.
        let label = rest.get(..len as usize)?;
        self.0 = &rest[len as usize..];
        Some(label)
    }
}

/// Reads the (possibly compressed) name at `pos`; returns it and the
/// position just after it in the packet.
pub fn read_name(buf: &[u8], start: usize) -> Result<(Name, usize), WireError> {
    let mut wire = Vec::new();
    let mut pos = start;
    // Every pointer must point before the start of the run of labels it
    // ends, so the targets strictly decrease: no loop is possible.
    let mut limit = start;
    let mut end = None;
    let mut pointers = 0;
    loop {
        let len = *buf.get(pos).ok_or(WireError::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                wire.push(0);
                let end = end.unwrap_or(pos + 1);
                return Ok((Name(wire), end));
            }
            0x00 => {
                let len = len as usize;
                let label = buf
                    .get(pos + 1..pos + 1 + len)
                    .ok_or(WireError::Truncated)?;
                if wire.len() + 1 + len + 1 > MAX_NAME_LEN {
                    return Err(WireError::NameTooLong);
                }
                wire.push(len as u8);
                wire.extend_from_slice(label);
                pos += 1 + len;
            }
            0xc0 => {
                let low = *buf.get(pos + 1).ok_or(WireError::Truncated)?;
                let target = (((len & 0x3f) as usize) << 8) | low as usize;
                pointers += 1;
                if target >= limit || pointers > MAX_POINTERS {
                    return Err(WireError::BadPointer);
                }
                end.get_or_insert(pos + 2);
                limit = target;
                pos = target;
            }
            _ => return Err(WireError::BadPointer),
        }
    }
}

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: u16,
    pub qclass: u16,
}

/// Reads the question at `pos`; returns it and the position after it.
pub fn read_question(buf: &[u8], pos: usize) -> Result<(Question, usize), WireError> {
    let (name, pos) = read_name(buf, pos)?;
    let qtype = read_u16(buf, pos)?;
    let qclass = read_u16(buf, pos + 2)?;
    Ok((
        Question {
            name,
            qtype,
            qclass,
        },
        pos + 4,
    ))
}

/// One resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: Name,
    pub rtype: u16,
    pub rclass: u16,
    pub ttl: u32,
    /// The data as it is on the wire (names inside it are not expanded).
    pub rdata: Vec<u8>,
}

impl Record {
    /// An A record.
    pub fn a(name: Name, ttl: u32, ip: std::net::Ipv4Addr) -> Record {
        Record {
            name,
            rtype: TYPE_A,
            rclass: CLASS_IN,
            ttl,
            rdata: ip.octets().to_vec(),
        }
    }

    /// The address of an A record of class IN.
    pub fn ipv4(&self) -> Option<std::net::Ipv4Addr> {
        if self.rtype != TYPE_A || self.rclass != CLASS_IN {
            return None;
        }
        let octets: [u8; 4] = self.rdata.as_slice().try_into().ok()?;
        Some(octets.into())
    }
}

fn read_record(buf: &[u8], pos: usize) -> Result<(Record, usize), WireError> {
    let (name, pos) = read_name(buf, pos)?;
    let rtype = read_u16(buf, pos)?;
    let rclass = read_u16(buf, pos + 2)?;
    let ttl = u32::from(read_u16(buf, pos + 4)?) << 16 | u32::from(read_u16(buf, pos + 6)?);
    let rdlen = read_u16(buf, pos + 8)? as usize;
    let start = pos + 10;
    let rdata = buf
        .get(start..start + rdlen)
        .ok_or(WireError::Truncated)?
        .to_vec();
    Ok((
        Record {
            name,
            rtype,
            rclass,
            ttl,
            rdata,
        },
        start + rdlen,
    ))
}

fn read_u16(buf: &[u8], pos: usize) -> Result<u16, WireError> {
    let b = buf.get(pos..pos + 2).ok_or(WireError::Truncated)?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

/// A whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

impl Message {
    /// Parses every section; bytes after the last announced record are
    /// ignored.
    pub fn parse(buf: &[u8]) -> Result<Message, WireError> {
        let raw = parse_header(buf).ok_or(WireError::Truncated)?;
        let mut pos = HEADER_LEN;
        // Vectors grow with what is actually read (each entry takes at
        // least 5 bytes of the packet), never with the announced counts.
        let mut questions = Vec::new();
        for _ in 0..raw.qdcount {
            let (q, next) = read_question(buf, pos)?;
            questions.push(q);
            pos = next;
        }
        let mut sections = [Vec::new(), Vec::new(), Vec::new()];
        for (section, count) in sections
            .iter_mut()
            .zip([raw.ancount, raw.nscount, raw.arcount])
        {
            for _ in 0..count {
                let (r, next) = read_record(buf, pos)?;
                section.push(r);
                pos = next;
            }
        }
        let [answers, authority, additional] = sections;
        Ok(Message {
            header: raw.header,
            questions,
            answers,
            authority,
            additional,
        })
    }

    /// The wire form. A record's name equal to the first question's is
    /// written as a pointer to it; every other name is written whole.
    /// Sections beyond 65535 entries are cut (never the case here).
    pub fn to_bytes(&self) -> Vec<u8> {
        let count = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
        let mut out = Vec::with_capacity(UDP_MAX);
        out.extend_from_slice(&self.header.id.to_be_bytes());
        out.extend_from_slice(&self.header.flags.to_be_bytes());
        for n in [
            self.questions.len(),
            self.answers.len(),
            self.authority.len(),
            self.additional.len(),
        ] {
            out.extend_from_slice(&count(n).to_be_bytes());
        }
        for q in self.questions.iter().take(u16::MAX as usize) {
            out.extend_from_slice(q.name.wire());
            out.extend_from_slice(&q.qtype.to_be_bytes());
            out.extend_from_slice(&q.qclass.to_be_bytes());
        }
        let first = self.questions.first().map(|q| &q.name);
        for section in [&self.answers, &self.authority, &self.additional] {
            for r in section.iter().take(u16::MAX as usize) {
                if Some(&r.name) == first {
                    // The first question's name is at offset 12.
                    out.extend_from_slice(&[0xc0, HEADER_LEN as u8]);
                } else {
                    out.extend_from_slice(r.name.wire());
                }
                out.extend_from_slice(&r.rtype.to_be_bytes());
                out.extend_from_slice(&r.rclass.to_be_bytes());
                out.extend_from_slice(&r.ttl.to_be_bytes());
                let rdata = &r.rdata[..r.rdata.len().min(u16::MAX as usize)];
                out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
                out.extend_from_slice(rdata);
            }
        }
        out
    }
}

/// A query for `name` (dotted) of type `qtype`, class IN, RD set.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, WireError> {
    Ok(Message {
        header: Header { id, flags: FLAG_RD },
        questions: vec![Question {
            name: Name::from_dotted(name)?,
            qtype,
            qclass: CLASS_IN,
        }],
        answers: vec![],
        authority: vec![],
        additional: vec![],
    }
    .to_bytes())
}

/// A reply with only a header (no sections): for queries whose question
/// cannot be read (FORMERR) or whose opcode is not served (NOTIMP).
pub fn header_only_reply(query: &Header, rcode: u8) -> Vec<u8> {
    Message {
        header: Header {
            id: query.id,
            flags: query.reply_flags(rcode),
        },
        questions: vec![],
        answers: vec![],
        authority: vec![],
        additional: vec![],
    }
    .to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    #[test]
    fn query_bytes_are_rfc_1035() {
        let q = build_query(0x1234, "Web.MyNet.", TYPE_A).unwrap();
        assert_eq!(
            q,
            [
                0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, // header
                3, b'W', b'e', b'b', 5, b'M', b'y', b'N', b'e', b't', 0, // name
                0, 1, 0, 1, // A IN
            ]
        );
        let m = Message::parse(&q).unwrap();
        assert_eq!(m.header.id, 0x1234);
        assert!(!m.header.is_response());
        assert_eq!(
            m.questions[0].name.lookup_key().as_deref(),
            Some("web.mynet")
        );
        assert_eq!(m.questions[0].name.to_string(), "Web.MyNet.");
    }

    #[test]
    fn answers_point_at_the_question_name() {
        let name = Name::from_dotted("web").unwrap();
        let m = Message {
            header: Header {
                id: 7,
                flags: FLAG_QR | FLAG_RA,
            },
            questions: vec![Question {
                name: name.clone(),
                qtype: TYPE_A,
                qclass: CLASS_IN,
            }],
            answers: vec![Record::a(name, 600, Ipv4Addr::new(10, 0, 0, 2))],
            authority: vec![],
            additional: vec![],
        };
        let bytes = m.to_bytes();
        assert_eq!(
            &bytes[HEADER_LEN + 9..],
            [0xc0, 12, 0, 1, 0, 1, 0, 0, 2, 0x58, 0, 4, 10, 0, 0, 2]
        );
        let back = Message::parse(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.answers[0].ipv4(), Some(Ipv4Addr::new(10, 0, 0, 2)));
    }

    #[test]
    fn label_and_name_limits() {
        let l63 = "a".repeat(63);
        assert!(Name::from_dotted(&l63).is_ok());
        assert_eq!(Name::from_dotted(&"a".repeat(64)), Err(WireError::BadLabel));
        assert_eq!(Name::from_dotted("a..b"), Err(WireError::BadLabel));
        // 4 labels of 63: 4*64 + 1 = 257 > 255.
        let long = [l63.as_str(); 4].join(".");
        assert_eq!(Name::from_dotted(&long), Err(WireError::NameTooLong));
        // 3*64 + 62 + 1 = 255: the longest name.
        let longest = format!("{l63}.{l63}.{l63}.{}", "a".repeat(61));
        assert_eq!(Name::from_dotted(&longest).unwrap().wire().len(), 255);
        assert_eq!(Name::from_dotted(".").unwrap(), Name::root());
        assert_eq!(Name::root().lookup_key().as_deref(), Some(""));
    }

    #[test]
    fn wire_names_over_255_bytes_are_refused() {
        // 5 labels of 63 bytes, uncompressed.
        let mut buf = vec![0; HEADER_LEN];
        for _ in 0..5 {
            buf.push(63);
            buf.extend_from_slice(&[b'x'; 63]);
        }
        buf.push(0);
        assert_eq!(read_name(&buf, HEADER_LEN), Err(WireError::NameTooLong));
        // The same length reached through pointers.
        let mut buf = vec![0; HEADER_LEN];
        buf.push(63);
        buf.extend_from_slice(&[b'x'; 63]);
        buf.push(0); // name at 12: one label
        for i in 0..4 {
            let prev = if i == 0 { 12 } else { 12 + 65 + (i - 1) * 66 };
            buf.push(63);
            buf.extend_from_slice(&[b'y'; 63]);
            buf.extend_from_slice(&[0xc0, prev as u8]);
        }
        let last = 12 + 65 + 3 * 66;
        assert_eq!(read_name(&buf, last), Err(WireError::NameTooLong));
        assert_eq!(read_name(&buf, 12 + 65).unwrap().0.labels().count(), 2);
    }

    #[test]
    fn compression_pointers_must_point_backwards() {
        let mut buf = vec![0; HEADER_LEN];
        // A pointer to itself.
        buf.extend_from_slice(&[0xc0, 12]);
        assert_eq!(read_name(&buf, 12), Err(WireError::BadPointer));
        // A forward pointer.
        let mut buf = vec![0; HEADER_LEN];
        buf.extend_from_slice(&[0xc0, 14, 1, b'a', 0]);
        assert_eq!(read_name(&buf, 12), Err(WireError::BadPointer));
        // A loop through a label: 12: "a" then pointer to 12.
        let mut buf = vec![0; HEADER_LEN];
        buf.extend_from_slice(&[1, b'a', 0xc0, 12]);
        assert_eq!(read_name(&buf, 12), Err(WireError::BadPointer));
        // Two names pointing at each other.
        let mut buf = vec![0; HEADER_LEN];
        buf.extend_from_slice(&[1, b'a', 0xc0, 16, 1, b'b', 0xc0, 12]);
        assert_eq!(read_name(&buf, 16), Err(WireError::BadPointer));
        // Reserved label types.
        for t in [0x40, 0x80] {
            let mut buf = vec![0; HEADER_LEN];
            buf.extend_from_slice(&[t, 0]);
            assert_eq!(read_name(&buf, 12), Err(WireError::BadPointer));
        }
        // A good one: "b" + pointer to "a." at 12; the name ends after the
        // pointer.
        let mut buf = vec![0; HEADER_LEN];
        buf.extend_from_slice(&[1, b'a', 0, 1, b'b', 0xc0, 12, 0xff]);
        let (name, end) = read_name(&buf, 15).unwrap();
        assert_eq!(name.to_string(), "b.a.");
        assert_eq!(end, 19);
    }

    #[test]
    fn truncated_packets_are_errors() {
        let q = build_query(1, "example.org", TYPE_A).unwrap();
        for n in 0..q.len() {
            assert!(Message::parse(&q[..n]).is_err(), "{n} bytes");
        }
        assert!(parse_header(&q[..11]).is_none());
        // A header announcing 65535 questions and nothing after it.
        let mut buf = vec![0; HEADER_LEN];
        buf[4] = 0xff;
        buf[5] = 0xff;
        assert_eq!(Message::parse(&buf), Err(WireError::Truncated));
    }

    #[test]
    fn odd_labels_have_no_lookup_key() {
        for label in [&b"a.b"[..], b"a b", b"\xc3\xa9", b"a\0"] {
            let name = Name::from_labels(&[label, b"x"]).unwrap();
            assert_eq!(name.lookup_key(), None, "{name}");
        }
        assert_eq!(
            Name::from_labels(&[&b"a.b"[..]]).unwrap().to_string(),
            "a\\046b."
        );
    }

    #[test]
    fn header_only_replies_copy_id_opcode_and_rd() {
        let query = Header {
            id: 0xbeef,
            flags: FLAG_RD | (2 << 11),
        };
        let r = header_only_reply(&query, RCODE_NOTIMP);
        let h = parse_header(&r).unwrap();
        assert_eq!(r.len(), HEADER_LEN);
        assert_eq!(h.header.id, 0xbeef);
        assert!(h.header.is_response());
        assert_eq!(h.header.opcode(), 2);
        assert_eq!(h.header.rcode(), RCODE_NOTIMP);
        assert_ne!(h.header.flags & FLAG_RD, 0);
        assert_eq!((h.qdcount, h.ancount, h.nscount, h.arcount), (0, 0, 0, 0));
    }

    fn label() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 1..=63)
    }

    fn name() -> impl Strategy<Value = Name> {
        proptest::collection::vec(label(), 0..6)
            .prop_filter_map("too long", |labels| Name::from_labels(&labels).ok())
    }

    fn record() -> impl Strategy<Value = Record> {
        (
            name(),
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(name, rtype, rclass, ttl, rdata)| Record {
                name,
                rtype,
                rclass,
                ttl,
                rdata,
            })
    }

    fn message() -> impl Strategy<Value = Message> {
        let question =
            (name(), any::<u16>(), any::<u16>()).prop_map(|(name, qtype, qclass)| Question {
                name,
                qtype,
                qclass,
            });
        (
            any::<u16>(),
            any::<u16>(),
            proptest::collection::vec(question, 0..3),
            proptest::collection::vec(record(), 0..4),
            proptest::collection::vec(record(), 0..2),
            proptest::collection::vec(record(), 0..2),
        )
            .prop_map(
                |(id, flags, questions, answers, authority, additional)| Message {
                    header: Header { id, flags },
                    questions,
                    answers,
                    authority,
                    additional,
                },
            )
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Message::parse(&bytes);
            let _ = parse_header(&bytes);
            for start in 0..bytes.len().min(40) {
                if let Ok((name, end)) = read_name(&bytes, start) {
                    prop_assert!(name.wire().len() <= MAX_NAME_LEN);
                    prop_assert!(end <= bytes.len());
                    let _ = name.lookup_key();
                    let _ = name.to_string();
                }
            }
        }

        #[test]
        fn mutated_queries_never_panic(
            seed in message(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let mut bytes = seed.to_bytes();
            if !bytes.is_empty() {
                for (i, b) in flips {
                    let n = bytes.len();
                    bytes[i % n] = b;
                }
            }
            let _ = Message::parse(&bytes);
        }

        #[test]
        fn build_then_parse_round_trips(m in message()) {
            let bytes = m.to_bytes();
            prop_assert_eq!(Message::parse(&bytes), Ok(m));
        }

        #[test]
        fn dotted_names_round_trip(labels in proptest::collection::vec("[a-zA-Z0-9-]{1,63}", 1..5)) {
            let text = labels.join(".");
            match Name::from_dotted(&text) {
                Ok(name) => {
                    prop_assert_eq!(name.to_string(), format!("{text}."));
                    prop_assert_eq!(name.lookup_key(), Some(text.to_ascii_lowercase()));
                }
                Err(e) => {
                    prop_assert_eq!(e, WireError::NameTooLong);
                    prop_assert!(text.len() + 2 > MAX_NAME_LEN);
                }
            }
        }
    }
}
