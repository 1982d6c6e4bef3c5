//! Property tests for every function that takes bytes from the peer: the three handshake
//! message decoders, [`Message::decode`], the two length checks, [`RecordOpener::open`], and
//! the four handshake states that consume peer messages. Inputs are random bytes and
//! mutations of valid encodings (bit flips, byte overwrites, truncations, insertions,
//! removals, length-field rewrites). What must hold: nothing panics; whatever decodes
//! re-encodes to exactly its input (one encoding per message, so the transcript hash and the
//! signatures cover what was parsed); and wherever a message is protected (host signature,
//! transcript binding, AEAD, client signature) any change is rejected. Properties that do
//! RSA private-key work per case run 32 cases; the pure ones run proptest's default 256.

use std::time::Instant;

use proptest::prelude::*;
use proptest::sample::Index;
use seashell::keys::cert::MAX_CERT_LEN;
use seashell::proto::handshake::client::{self, ExpectServerHello};
use seashell::proto::handshake::server::{self, ExpectClientAuth, ExpectKeyTransport};
use seashell::proto::handshake::{MAX_HANDSHAKE_LEN, record_len};
use seashell::proto::message::{
    ClientHello, KeyTransport, MAGIC, MAX_ACCOUNT, MAX_BANNER, MAX_RSA_BLOCK, MAX_SPKI, MAX_TEXT,
    ServerHello, VERSION,
};
use seashell::proto::record::{HEADER_LEN, MAX_FRAME_LEN, TAG_LEN, frame_len};
use seashell::proto::schedule;
use seashell::proto::{
    DecodeError, EncodeError, ExitStatus, Message, OwnedMessage, ProtoError, RecordOpener,
    RecordSealer, UpdateLimits, WindowSize,
};

use crate::proto::{client_key, open_all, record_body, server_keys};

/// Cases for properties that sign or decrypt with RSA-3072 in every case.
const RSA_CASES: u32 = 32;

// ---------------------------------------------------------------------------------------
// Mutations of valid encodings
// ---------------------------------------------------------------------------------------

/// Where a big-endian length prefix sits in an encoding, and its width in bytes (2 or 4).
#[derive(Debug, Clone, Copy)]
struct LenField {
    at: usize,
    width: usize,
}

const fn u16_field(at: usize) -> LenField {
    LenField { at, width: 2 }
}

const fn u32_field(at: usize) -> LenField {
    LenField { at, width: 4 }
}

/// The value a length-field mutation writes.
#[derive(Debug, Clone)]
enum NewLength {
    Zero,
    Plus(u32),
    Minus(u32),
    AllOnes,
    Any(u32),
}

/// One edit of an encoding. Positions are [`Index`]es, resolved against the current length.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    /// Rewrites one of the encoding's known length fields.
    Length(Index, NewLength),
}

fn new_length() -> impl Strategy<Value = NewLength> {
    prop_oneof![
        Just(NewLength::Zero),
        (1u32..4).prop_map(NewLength::Plus),
        (1u32..4).prop_map(NewLength::Minus),
        Just(NewLength::AllOnes),
        any::<u32>().prop_map(NewLength::Any),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, v)| Mutation::SetByte(at, v)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        1 => (any::<Index>(), 1usize..8).prop_map(|(at, n)| Mutation::Remove(at, n)),
        2 => (any::<Index>(), new_length()).prop_map(|(at, v)| Mutation::Length(at, v)),
    ]
}

/// One to three edits applied in order.
fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..4)
}

/// `bytes` after `edits`; `fields` are the encoding's length prefixes.
fn mutate(bytes: &[u8], edits: &[Mutation], fields: &[LenField]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for edit in edits {
        apply(&mut out, edit, fields);
    }
    out
}

fn apply(out: &mut Vec<u8>, edit: &Mutation, fields: &[LenField]) {
    let len = out.len();
    match edit {
        Mutation::FlipBit(at, bit) if len > 0 => out[at.index(len)] ^= 1 << bit,
        Mutation::SetByte(at, value) if len > 0 => out[at.index(len)] = *value,
        Mutation::Truncate(at) if len > 0 => out.truncate(at.index(len)),
        Mutation::Insert(at, bytes) => {
            let i = at.index(len + 1);
            out.splice(i..i, bytes.iter().copied());
        }
        Mutation::Remove(at, n) if len > 0 => {
            let i = at.index(len);
            out.drain(i..(i + n).min(len));
        }
        Mutation::Length(which, value) if !fields.is_empty() => {
            rewrite_length(out, fields[which.index(fields.len())], value);
        }
        _ => {}
    }
}

fn rewrite_length(out: &mut [u8], field: LenField, value: &NewLength) {
    let Some(slot) = out.get_mut(field.at..field.at + field.width) else {
        return;
    };
    let old = slot.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    let mask = if field.width == 2 { 0xFFFF } else { u32::MAX };
    let new = match *value {
        NewLength::Zero => 0,
        NewLength::Plus(d) => old.wrapping_add(d),
        NewLength::Minus(d) => old.wrapping_sub(d),
        NewLength::AllOnes => mask,
        NewLength::Any(v) => v,
    } & mask;
    slot.copy_from_slice(&new.to_be_bytes()[4 - field.width..]);
}

// ---------------------------------------------------------------------------------------
// Messages as owned values, so strategies can produce them
// ---------------------------------------------------------------------------------------

fn encode(msg: &OwnedMessage) -> Vec<u8> {
    let mut out = Vec::new();
    msg.as_message().encode(&mut out).unwrap();
    out
}

/// The encoding, or the encoder's refusal of an over-long field.
fn try_encode(msg: &OwnedMessage) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    msg.as_message().encode(&mut out)?;
    Ok(out)
}

/// The length prefixes in a message's encoding (after the type byte) that the mutations
/// below aim at.
fn length_fields(msg: &OwnedMessage) -> Vec<LenField> {
    match msg {
        OwnedMessage::ClientAuth { public_key, .. } => {
            vec![u16_field(1), u16_field(3 + public_key.len())]
        }
        OwnedMessage::Close { .. }
        | OwnedMessage::Exec { .. }
        | OwnedMessage::ConsoleState { .. } => {
            vec![u16_field(1)]
        }
        _ => Vec::new(),
    }
}

fn bytes_up_to(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..64),
        1 => prop::collection::vec(any::<u8>(), max..=max),
        1 => prop::collection::vec(any::<u8>(), 0..=max),
    ]
}

fn text() -> impl Strategy<Value = String> {
    "(?s).{0,40}"
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..2048)
}

/// Any message with every field within the bounds the decoder enforces.
fn arb_message() -> impl Strategy<Value = OwnedMessage> {
    prop_oneof![
        (
            bytes_up_to(MAX_SPKI),
            bytes_up_to(MAX_RSA_BLOCK),
            "[a-z0-9._-]{0,64}",
            bytes_up_to(MAX_CERT_LEN),
        )
            .prop_map(|(public_key, signature, account, certificate)| {
                OwnedMessage::ClientAuth {
                    public_key,
                    signature,
                    account,
                    certificate,
                }
            }),
        any::<[u8; 32]>().prop_map(|session_id| OwnedMessage::AuthOk { session_id }),
        Just(OwnedMessage::AuthFailed),
        Just(OwnedMessage::KeyUpdate),
        text().prop_map(|reason| OwnedMessage::Close { reason }),
        text().prop_map(|line| OwnedMessage::Exec { line }),
        data().prop_map(OwnedMessage::Stdin),
        Just(OwnedMessage::StdinEof),
        Just(OwnedMessage::Interrupt),
        data().prop_map(OwnedMessage::Stdout),
        data().prop_map(OwnedMessage::Stderr),
        any::<i32>().prop_map(|c| OwnedMessage::Exit(ExitStatus::Code(c))),
        any::<u8>().prop_map(|s| OwnedMessage::Exit(ExitStatus::Signal(s))),
        text().prop_map(|cwd| OwnedMessage::ConsoleState { cwd }),
        any::<u64>().prop_map(OwnedMessage::Ping),
        any::<u64>().prop_map(OwnedMessage::Pong),
        arb_transfer(),
        arb_terminal(),
        arb_console(),
    ]
}

/// Console messages (opening it, completion) with arbitrary in-range fields.
fn arb_console() -> impl Strategy<Value = OwnedMessage> {
    let of = |m: Message<'_>| m.to_owned_message();
    let size = window_size();
    let names = prop::collection::vec("[^\\x00]{1,20}", 0..20)
        .prop_map(|names| names.iter().map(|n| format!("{n}\0")).collect::<String>());
    prop_oneof![
        ("([!-~]{1,64})?", size)
            .prop_map(move |(term, size)| of(Message::OpenConsole { term: &term, size })),
        (
            (text(), text(), text()),
            any::<(bool, bool)>(),
            text(),
            bytes_up_to(MAX_BANNER),
            text()
        )
            .prop_map(
                move |((user, host, home), (superuser, restricted), key_name, banner, warning)| {
                    of(Message::ConsoleOpened {
                        user: &user,
                        host: &host,
                        home: &home,
                        superuser,
                        restricted,
                        key_name: &key_name,
                        banner: &banner,
                        warning: &warning,
                    })
                }
            ),
        (text(), any::<bool>()).prop_map(move |(word, command)| of(Message::Complete {
            word: &word,
            command
        })),
        names.prop_map(move |names| of(Message::Completions { names: &names })),
    ]
}

/// Any terminal size.
fn window_size() -> impl Strategy<Value = WindowSize> + Clone {
    any::<[u16; 4]>().prop_map(|[rows, cols, xpixel, ypixel]| WindowSize {
        rows,
        cols,
        xpixel,
        ypixel,
    })
}

/// Terminal messages with arbitrary in-range fields.
fn arb_terminal() -> impl Strategy<Value = OwnedMessage> {
    let of = |m: Message<'_>| m.to_owned_message();
    let size = window_size();
    prop_oneof![
        (text(), "[!-~]{1,64}", size.clone()).prop_map(move |(line, term, size)| of(
            Message::ExecPty {
                line: &line,
                term: &term,
                size
            }
        )),
        size.prop_map(move |size| of(Message::WindowChange(size))),
        Just(of(Message::PtyRefused)),
    ]
}

/// File-transfer messages with arbitrary in-range fields.
fn arb_transfer() -> impl Strategy<Value = OwnedMessage> {
    let of = |m: Message<'_>| m.to_owned_message();
    prop_oneof![
        text().prop_map(move |path| of(Message::Stat { path: &path })),
        (
            text(),
            any::<u64>(),
            0u32..=0o7777,
            any::<Option<i64>>(),
            any::<bool>()
        )
            .prop_map(
                move |(path, size, mode, mtime, resume)| of(Message::PutFile {
                    path: &path,
                    size,
                    mode,
                    mtime,
                    resume
                })
            ),
        (any::<u64>(), any::<[u8; 32]>()).prop_map(move |(offset, prefix_sha256)| of(
            Message::PutReady {
                offset,
                prefix_sha256
            }
        )),
        (text(), any::<u64>(), any::<[u8; 32]>()).prop_map(
            move |(path, offset, prefix_sha256)| of(Message::GetFile {
                path: &path,
                offset,
                prefix_sha256
            })
        ),
        data().prop_map(move |d| of(Message::FileData(&d))),
        any::<[u8; 32]>().prop_map(move |sha256| of(Message::FileEnd { sha256 })),
        (text(), 0u32..=0o7777)
            .prop_map(move |(path, mode)| of(Message::MakeDir { path: &path, mode })),
        Just(of(Message::TransferDone)),
        text().prop_map(move |reason| of(Message::TransferFailed { reason: &reason })),
    ]
}

/// Random bytes, half of them behind a type byte the decoder knows, so parsing gets past
/// the first field.
fn random_plaintext() -> impl Strategy<Value = Vec<u8>> {
    let known = prop::sample::select(vec![
        0x01u8, 0x02, 0x03, 0x04, 0x05, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19,
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B, 0x2C,
    ]);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        (known, prop::collection::vec(any::<u8>(), 0..256)).prop_map(|(t, rest)| {
            let mut out = vec![t];
            out.extend(rest);
            out
        }),
    ]
}

// ---------------------------------------------------------------------------------------
// Handshake messages as values
// ---------------------------------------------------------------------------------------

fn arb_client_hello() -> impl Strategy<Value = ClientHello> {
    (any::<[u8; 32]>(), any::<[u8; 32]>())
        .prop_map(|(random, x25519)| ClientHello { random, x25519 })
}

fn arb_server_hello() -> impl Strategy<Value = ServerHello> {
    (
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        bytes_up_to(MAX_SPKI),
        bytes_up_to(MAX_SPKI),
        bytes_up_to(MAX_RSA_BLOCK),
        bytes_up_to(MAX_CERT_LEN),
    )
        .prop_map(
            |(random, x25519, host_key, transport_key, signature, certificate)| ServerHello {
                random,
                x25519,
                host_key,
                transport_key,
                signature,
                certificate,
            },
        )
}

fn arb_key_transport() -> impl Strategy<Value = KeyTransport> {
    bytes_up_to(MAX_RSA_BLOCK).prop_map(|ciphertext| KeyTransport { ciphertext })
}

/// Length prefixes of a ServerHello body: host key, transport key, signature.
fn server_hello_fields(hello: &ServerHello, offset: usize) -> Vec<LenField> {
    let host = offset + 1 + 2 + 32 + 32;
    let transport = host + 2 + hello.host_key.len();
    let signature = transport + 2 + hello.transport_key.len();
    vec![u16_field(host), u16_field(transport), u16_field(signature)]
}

/// `prefix` followed by random bytes, or random bytes alone.
fn random_after(prefix: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        prop::collection::vec(any::<u8>(), 0..256)
            .prop_map(move |rest| [&prefix[..], &rest].concat()),
    ]
}

fn encoded<T>(value: &T, encode: impl Fn(&T, &mut Vec<u8>) -> Result<(), EncodeError>) -> Vec<u8> {
    let mut out = Vec::new();
    encode(value, &mut out).unwrap();
    out
}

/// ClientHello's encoder cannot fail (fixed-size fields); this gives it the common shape.
fn encode_client_hello(hello: &ClientHello, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    hello.encode(out);
    Ok(())
}

/// A decoder's answer is an error, or a value that encodes back to exactly `bytes`.
fn check_canonical<T: std::fmt::Debug>(
    bytes: &[u8],
    decoded: Result<T, DecodeError>,
    encode: impl Fn(&T, &mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), TestCaseError> {
    if let Ok(value) = decoded {
        prop_assert_eq!(
            encoded(&value, encode),
            bytes,
            "{:?} is not canonical",
            value
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Codecs: round trips, random bytes, mutations
// ---------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn message_round_trips(msg in arb_message()) {
        let bytes = encode(&msg);
        let decoded = Message::decode(&bytes).map(|m| m.to_owned_message());
        prop_assert_eq!(decoded, Ok(msg));
    }

    #[test]
    fn mutated_message_is_rejected_or_canonical(msg in arb_message(), edits in mutations()) {
        let bytes = mutate(&encode(&msg), &edits, &length_fields(&msg));
        check_canonical(&bytes, Message::decode(&bytes), |m, out| m.encode(out))?;
    }

    #[test]
    fn random_plaintext_is_rejected_or_canonical(bytes in random_plaintext()) {
        check_canonical(&bytes, Message::decode(&bytes), |m, out| m.encode(out))?;
    }

    #[test]
    fn long_text_is_refused_never_cut(
        prefix in "[a-z]{0,3}",
        unit in prop::sample::select(vec!["a", "é", "€", "🐚"]),
    ) {
        // Past MAX_TEXT with characters of 1 to 4 bytes: the encoder refuses the field
        // instead of running a shortened command line.
        let line = format!("{prefix}{}", unit.repeat(MAX_TEXT / unit.len() + 2));
        let refused = try_encode(&OwnedMessage::Exec { line });
        prop_assert!(
            matches!(refused, Err(EncodeError::FieldTooLong { max: MAX_TEXT, .. })),
            "an over-long Exec was not refused: {:?}",
            refused.map(|b| b.len())
        );
    }

    #[test]
    fn client_hello_round_trips(hello in arb_client_hello()) {
        let bytes = encoded(&hello, encode_client_hello);
        prop_assert_eq!(ClientHello::decode(&bytes), Ok(hello));
    }

    #[test]
    fn client_hello_bytes_are_rejected_or_canonical(
        bytes in random_after([&[0x01][..], MAGIC, &VERSION.to_be_bytes()].concat()),
    ) {
        check_canonical(&bytes, ClientHello::decode(&bytes), encode_client_hello)?;
    }

    #[test]
    fn mutated_client_hello_is_rejected_or_canonical(
        hello in arb_client_hello(),
        edits in mutations(),
    ) {
        let bytes = mutate(&encoded(&hello, encode_client_hello), &edits, &[]);
        check_canonical(&bytes, ClientHello::decode(&bytes), encode_client_hello)?;
    }

    #[test]
    fn server_hello_round_trips(hello in arb_server_hello()) {
        let bytes = encoded(&hello, ServerHello::encode);
        prop_assert_eq!(ServerHello::decode(&bytes), Ok(hello));
    }

    #[test]
    fn server_hello_bytes_are_rejected_or_canonical(
        bytes in random_after([&[0x02][..], &VERSION.to_be_bytes()].concat()),
    ) {
        check_canonical(&bytes, ServerHello::decode(&bytes), ServerHello::encode)?;
    }

    #[test]
    fn mutated_server_hello_is_rejected_or_canonical(
        hello in arb_server_hello(),
        edits in mutations(),
    ) {
        let fields = server_hello_fields(&hello, 0);
        let bytes = mutate(&encoded(&hello, ServerHello::encode), &edits, &fields);
        check_canonical(&bytes, ServerHello::decode(&bytes), ServerHello::encode)?;
    }

    #[test]
    fn key_transport_round_trips(kt in arb_key_transport()) {
        let bytes = encoded(&kt, KeyTransport::encode);
        prop_assert_eq!(KeyTransport::decode(&bytes), Ok(kt));
    }

    #[test]
    fn key_transport_bytes_are_rejected_or_canonical(bytes in random_after(vec![0x03, 0x01])) {
        check_canonical(&bytes, KeyTransport::decode(&bytes), KeyTransport::encode)?;
    }

    #[test]
    fn mutated_key_transport_is_rejected_or_canonical(
        kt in arb_key_transport(),
        edits in mutations(),
    ) {
        let bytes = mutate(&encoded(&kt, KeyTransport::encode), &edits, &[u16_field(1)]);
        check_canonical(&bytes, KeyTransport::decode(&bytes), KeyTransport::encode)?;
    }

    #[test]
    fn record_len_accepts_exactly_its_range(
        n in prop_oneof![any::<u32>(), 0u32..=MAX_HANDSHAKE_LEN as u32 + 2],
    ) {
        let in_range = (1..=MAX_HANDSHAKE_LEN as u32).contains(&n);
        match record_len(n.to_be_bytes()) {
            Ok(len) => prop_assert!(in_range && len == n as usize),
            Err(err) => prop_assert!(!in_range && err == ProtoError::FrameTooLarge(n)),
        }
    }

    #[test]
    fn frame_len_accepts_exactly_its_range(
        n in prop_oneof![any::<u32>(), 0u32..=TAG_LEN as u32 + 2, MAX_FRAME_LEN as u32 - 2..=MAX_FRAME_LEN as u32 + 2],
    ) {
        let in_range = (TAG_LEN as u32 + 1..=MAX_FRAME_LEN as u32).contains(&n);
        match frame_len(n.to_be_bytes()) {
            Ok(len) => prop_assert!(in_range && len == n as usize),
            Err(err) => prop_assert!(!in_range && err == ProtoError::FrameTooLarge(n)),
        }
    }
}

#[test]
fn over_long_client_auth_fields_are_refused_both_ways() {
    // The encoder refuses fields above their bound; a hand-made one is refused on receipt.
    for (key_len, sig_len, account_len) in [
        (MAX_SPKI + 1, 0, 0),
        (0, MAX_RSA_BLOCK + 1, 0),
        (0, 0, MAX_ACCOUNT + 1),
    ] {
        let msg = OwnedMessage::ClientAuth {
            public_key: vec![0; key_len],
            signature: vec![0; sig_len],
            account: "a".repeat(account_len),
            certificate: Vec::new(),
        };
        assert!(try_encode(&msg).is_err());
        // type 0x01, then key, signature and account as u16-length-prefixed fields.
        let mut bytes = vec![0x01];
        for len in [key_len, sig_len, account_len] {
            bytes.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
            bytes.extend(std::iter::repeat_n(0u8, len));
        }
        assert_eq!(Message::decode(&bytes), Err(DecodeError::TooLong));
    }
}

// ---------------------------------------------------------------------------------------
// Record layer: random frames and mutated sealed frames
// ---------------------------------------------------------------------------------------

/// A fresh sealer/opener pair for one direction (fixed secrets: no RSA, no handshake).
fn record_pair() -> (RecordSealer, RecordOpener) {
    let secrets = schedule::derive(&[3; 32], &[4; 32], &[5; 32]);
    let now = Instant::now();
    let secret = secrets.client_to_server;
    (
        RecordSealer::new(secret.clone(), UpdateLimits::default(), now).unwrap(),
        RecordOpener::new(secret, now).unwrap(),
    )
}

/// The header and the body a reader would hand to [`RecordOpener::open`]: as many bytes as
/// the header announces, or all there are when fewer arrived. `None` without a full header.
fn frame_parts(wire: &[u8]) -> Option<([u8; HEADER_LEN], Vec<u8>)> {
    let header: [u8; HEADER_LEN] = wire.get(..HEADER_LEN)?.try_into().ok()?;
    let announced = u32::from_be_bytes(header) as usize;
    let rest = &wire[HEADER_LEN..];
    Some((header, rest[..announced.min(rest.len())].to_vec()))
}

proptest! {
    #[test]
    fn random_frames_never_open(
        header in any::<[u8; HEADER_LEN]>(),
        body in prop::collection::vec(any::<u8>(), 0..600),
        consistent in any::<bool>(),
    ) {
        // Half the cases announce the body's real length, so AES-GCM itself gets to say no.
        let header = if consistent { (body.len() as u32).to_be_bytes() } else { header };
        let (_, mut opener) = record_pair();
        let mut body = body;
        let err = opener.open(header, &mut body, Instant::now());
        match frame_len(header) {
            Ok(_) => prop_assert_eq!(err, Err(ProtoError::BadFrame)),
            Err(too_large) => prop_assert_eq!(err, Err(too_large)),
        }
    }

    #[test]
    fn mutated_frame_opens_only_when_unchanged(msg in arb_message(), edits in mutations()) {
        let (mut sealer, mut opener) = record_pair();
        let mut wire = Vec::new();
        let sealed = sealer.seal(&msg.as_message(), Instant::now(), &mut wire);
        if msg == OwnedMessage::KeyUpdate {
            // Only the sealer makes KeyUpdate frames, as it switches keys.
            prop_assert!(matches!(sealed, Err(ProtoError::Misuse(_))), "{:?}", sealed);
            return Ok(());
        }
        sealed.unwrap();
        let original = frame_parts(&wire).unwrap();
        let mutated = mutate(&wire, &edits, &[u32_field(0)]);
        let Some((header, mut body)) = frame_parts(&mutated) else {
            return Ok(()); // Not even a header: the reader reports truncation.
        };
        let unchanged = (header, &body) == (original.0, &original.1);
        let opened = opener.open(header, &mut body, Instant::now());
        if unchanged {
            // Only trailing bytes changed: they belong to the next frame.
            let opened = opened.unwrap();
            let plain = opened.map_or(&[][..], |n| &body[..n]);
            prop_assert_eq!(Message::decode(plain).unwrap().to_owned_message(), msg);
        } else {
            prop_assert!(
                matches!(opened, Err(ProtoError::BadFrame | ProtoError::FrameTooLarge(_))),
                "a changed frame gave {:?}", opened
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Handshake states fed mutated messages
// ---------------------------------------------------------------------------------------

/// One honest handshake, made afresh for each case (the provider draws its own randomness,
/// so no handshake can be replayed), with the server's state from before KeyTransport.
struct Honest {
    key_transport: Vec<u8>,
    client_auth_frame: Vec<u8>,
    server: ExpectKeyTransport,
}

/// A client's ClientHello and the server's ServerHello for it, with both states.
fn hellos() -> (ExpectServerHello, Vec<u8>, ExpectKeyTransport, Vec<u8>) {
    let (client, client_hello) = client::start().unwrap();
    let (server, server_hello) = server::accept(server_keys(), record_body(&client_hello)).unwrap();
    (client, client_hello, server, server_hello)
}

fn honest() -> Honest {
    let (client, _, server, server_hello) = hellos();
    let (flight, _) = client
        .handle(record_body(&server_hello))
        .unwrap()
        .trust(
            client_key(),
            "",
            None,
            UpdateLimits::default(),
            Instant::now(),
        )
        .unwrap();
    let (header, kt_body, client_auth_frame) = crate::proto::split_unit(&flight);
    Honest {
        key_transport: [&header[..], kt_body].concat(),
        client_auth_frame: client_auth_frame.to_vec(),
        server,
    }
}

/// The server's state after `body` as KeyTransport.
fn key_transport(state: ExpectKeyTransport, body: &[u8]) -> Result<ExpectClientAuth, ProtoError> {
    state.handle(server_keys(), body, UpdateLimits::default(), Instant::now())
}

/// An honest handshake up to the server's state awaiting ClientAuth, and the honest
/// ClientAuth it opened.
fn honest_client_auth() -> (ExpectClientAuth, Vec<u8>) {
    let h = honest();
    let mut state = key_transport(h.server, record_body(&h.key_transport)).unwrap();
    let client_auth = open_all(state.opener(), &h.client_auth_frame)
        .unwrap()
        .remove(0);
    (state, client_auth)
}

/// Whether `frames` opened to exactly one message: ClientAuth with the client's key.
fn is_honest_client_auth(frames: &[Vec<u8>]) -> bool {
    matches!(
        frames,
        [one] if matches!(
            Message::decode(one),
            Ok(Message::ClientAuth { public_key, .. })
                if public_key == client_key().public_key().spki_der()
        )
    )
}

/// The body a reader would take from a mutated handshake record: its header must pass
/// [`record_len`] and that many bytes must follow (later bytes belong to the next record).
fn first_record(wire: &[u8]) -> Option<&[u8]> {
    let header = wire.get(..HEADER_LEN)?.try_into().ok()?;
    let len = record_len(header).ok()?;
    wire.get(HEADER_LEN..HEADER_LEN + len)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(RSA_CASES))]

    #[test]
    fn server_binds_every_client_hello_byte(edits in mutations()) {
        let (client, client_hello) = client::start().unwrap();
        let mutated = mutate(&client_hello, &edits, &[u32_field(0)]);
        let Some(body) = first_record(&mutated) else { return Ok(()) };
        match server::accept(server_keys(), body) {
            Err(err) => {
                prop_assert!(matches!(err, ProtoError::Decode(_)), "{:?}", err);
                prop_assert!(ClientHello::decode(body).is_err());
            }
            Ok((_, server_hello)) => {
                // No integrity yet: the server takes any well-formed hello, but signs what it
                // got, so the client (which sent the original) notices any change.
                check_canonical(body, ClientHello::decode(body), encode_client_hello)?;
                let verdict = client.handle(record_body(&server_hello));
                if body == record_body(&client_hello) {
                    prop_assert!(verdict.is_ok());
                } else {
                    prop_assert_eq!(verdict.err(), Some(ProtoError::BadServerSignature));
                }
            }
        }
    }

    #[test]
    fn key_transport_changes_surface_only_as_a_bad_frame(edits in mutations()) {
        let h = honest();
        let mutated = mutate(&h.key_transport, &edits, &[u32_field(0), u16_field(5)]);
        let Some(body) = first_record(&mutated) else { return Ok(()) };
        if KeyTransport::decode(body).is_err() {
            // Rejected before any RSA work; check the state agrees without paying for it
            // in every case.
            return Ok(());
        }
        check_canonical(body, KeyTransport::decode(body), KeyTransport::encode)?;
        // Whatever the ciphertext, the server answers the same way (no padding oracle)...
        let mut state = key_transport(h.server, body).unwrap();
        // ...and only the client's first frame tells whether the keys match.
        let opened = open_all(state.opener(), &h.client_auth_frame);
        if body == record_body(&h.key_transport) {
            prop_assert!(opened.is_ok_and(|frames| is_honest_client_auth(&frames)));
        } else {
            prop_assert_eq!(opened, Err(ProtoError::BadFrame));
        }
    }

    #[test]
    fn malformed_key_transport_is_a_decode_error(
        bytes in random_after(vec![0x03, 0x01]),
    ) {
        let (_, _, state, _) = hellos();
        match key_transport(state, &bytes) {
            Ok(_) => check_canonical(&bytes, KeyTransport::decode(&bytes), KeyTransport::encode)?,
            Err(err) => {
                prop_assert!(KeyTransport::decode(&bytes).is_err());
                prop_assert!(matches!(err, ProtoError::Decode(_)), "{:?}", err);
            }
        }
    }

    #[test]
    fn any_oaep_ciphertext_gets_the_same_answer(ciphertext in any::<[u8; 32]>()) {
        // A full-size ciphertext (384 bytes for RSA-3072) that is not the honest one: the
        // server must go on as usual, and the client's frame must fail to open.
        let h = honest();
        let mut full = record_body(&h.key_transport)[3..].to_vec();
        full[..32].copy_from_slice(&ciphertext);
        let body = encoded(&KeyTransport { ciphertext: full }, KeyTransport::encode);
        prop_assume!(body != record_body(&h.key_transport));
        let mut state = key_transport(h.server, &body).unwrap();
        prop_assert_eq!(open_all(state.opener(), &h.client_auth_frame), Err(ProtoError::BadFrame));
    }

    #[test]
    fn mutated_client_auth_is_refused(edits in mutations()) {
        let (state, client_auth) = honest_client_auth();
        let Ok(OwnedMessage::ClientAuth { public_key: key, .. }) =
            Message::decode(&client_auth).map(|m| m.to_owned_message())
        else {
            return Err(TestCaseError::fail("the honest first frame is not ClientAuth"));
        };
        let fields = [u16_field(1), u16_field(3 + key.len())];
        let mutated = mutate(&client_auth, &edits, &fields);
        let Ok(msg) = Message::decode(&mutated) else { return Ok(()) };
        check_canonical(&mutated, Ok(msg), |m, out| m.encode(out))?;
        match state.handle(&msg) {
            Ok((identity, _)) => {
                prop_assert_eq!(&mutated, &client_auth);
                prop_assert_eq!(identity.public_key_der, key);
            }
            Err(err) => {
                prop_assert_ne!(&mutated, &client_auth);
                prop_assert!(
                    matches!(
                        err,
                        ProtoError::Unexpected(_)
                            | ProtoError::Decode(DecodeError::Invalid("client key"))
                            | ProtoError::BadClientSignature
                    ),
                    "{:?}", err
                );
            }
        }
    }

    #[test]
    fn anything_but_a_valid_client_auth_is_refused(msg in arb_message()) {
        let result = honest_client_auth().0.handle(&msg.as_message());
        match msg {
            OwnedMessage::ClientAuth { .. } => prop_assert!(
                matches!(
                    result,
                    Err(ProtoError::Decode(DecodeError::Invalid("client key"))
                        | ProtoError::BadClientSignature)
                ),
                "{:?}", result.err()
            ),
            _ => prop_assert_eq!(
                result.err(),
                Some(ProtoError::Unexpected(msg.as_message().name()))
            ),
        }
    }
}

proptest! {
    // ServerHello checks cost one RSA public-key operation: cheap enough for more cases.
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn client_accepts_only_the_signed_server_hello(edits in mutations()) {
        let (client, _, _, server_hello) = hellos();
        let hello = ServerHello::decode(record_body(&server_hello)).unwrap();
        let mut fields = server_hello_fields(&hello, HEADER_LEN);
        fields.push(u32_field(0));
        let mutated = mutate(&server_hello, &edits, &fields);
        let Some(body) = first_record(&mutated) else { return Ok(()) };
        let verdict = client.handle(body);
        if body == record_body(&server_hello) {
            prop_assert!(verdict.is_ok());
        } else {
            let err = verdict.err();
            prop_assert!(
                matches!(err, Some(ProtoError::Decode(_) | ProtoError::BadServerSignature)),
                "{:?}", err
            );
        }
    }

    #[test]
    fn random_server_hello_is_refused(
        bytes in random_after([&[0x02][..], &VERSION.to_be_bytes()].concat()),
    ) {
        let err = client::start().unwrap().0.handle(&bytes).err();
        prop_assert!(
            matches!(err, Some(ProtoError::Decode(_) | ProtoError::BadServerSignature)),
            "{:?}", err
        );
    }
}
