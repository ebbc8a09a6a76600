//! Unit tests of the reader over hand-built RDB files: length and string encodings, every
//! element-by-element type on both the whole-key and the big-key path, opcodes, checksums,
//! modules, and truncated or random input.

use std::collections::VecDeque;

use bytes::Bytes;

use super::input::{Input, Length, run_sync};
use super::value::*;
use super::*;

fn enc_len(n: u64) -> Vec<u8> {
    if n < 64 {
        vec![n as u8]
    } else if n < 16384 {
        vec![0x40 | (n >> 8) as u8, n as u8]
    } else if n <= u64::from(u32::MAX) {
        let mut v = vec![0x80];
        v.extend_from_slice(&(n as u32).to_be_bytes());
        v
    } else {
        let mut v = vec![0x81];
        v.extend_from_slice(&n.to_be_bytes());
        v
    }
}

fn enc_str(s: &[u8]) -> Vec<u8> {
    let mut v = enc_len(s.len() as u64);
    v.extend_from_slice(s);
    v
}

/// A listpack of string entries (each under 64 bytes).
fn listpack(entries: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for e in entries {
        assert!(e.len() < 64);
        body.push(0x80 | e.len() as u8);
        body.extend_from_slice(e);
        body.push((1 + e.len()) as u8); // backlen, 1 byte below 128
    }
    let mut v = Vec::new();
    v.extend_from_slice(&((6 + body.len() + 1) as u32).to_le_bytes());
    v.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    v.extend_from_slice(&body);
    v.push(0xFF);
    v
}

/// A whole RDB file: header, `body`, EOF and the right checksum.
fn rdb(version: u16, body: &[u8]) -> Vec<u8> {
    let mut v = format!("REDIS{version:04}").into_bytes();
    v.extend_from_slice(body);
    v.push(0xFF);
    if version >= 5 {
        let crc = crc64(0, &v);
        v.extend_from_slice(&crc.to_le_bytes());
    }
    v
}

fn key(rdb_type: u8, k: &[u8], value: &[u8]) -> Vec<u8> {
    let mut v = vec![rdb_type];
    v.extend(enc_str(k));
    v.extend_from_slice(value);
    v
}

async fn events(file: &[u8], limits: RdbLimits) -> Result<Vec<RdbEvent>, RdbError> {
    let mut r = RdbReader::new(file, limits);
    let mut out = Vec::new();
    while let Some(ev) = r.next().await? {
        out.push(ev);
    }
    assert_eq!(r.consumed(), file.len() as u64);
    Ok(out)
}

fn small(restore_bytes: usize, chunk_elements: usize) -> RdbLimits {
    RdbLimits { restore_bytes, max_string: 1 << 20, chunk_elements }
}

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_owned())
}

/// The elements of a big key's chunks, and the chunk sizes.
fn big_key(evs: &[RdbEvent]) -> (Vec<Elements>, Vec<usize>) {
    let mut chunks = Vec::new();
    let mut inside = false;
    for ev in evs {
        match ev {
            RdbEvent::BigKeyStart { .. } => inside = true,
            RdbEvent::BigKeyChunk(c) => {
                assert!(inside);
                chunks.push(c.clone());
            }
            RdbEvent::BigKeyEnd => inside = false,
            _ => {}
        }
    }
    let sizes = chunks.iter().map(Elements::len).collect();
    (chunks, sizes)
}

#[test]
fn every_length_encoding_is_read() {
    for n in [0u64, 63, 64, 16383, 16384, u64::from(u32::MAX), u64::from(u32::MAX) + 1, u64::MAX] {
        let bytes = enc_len(n);
        let got = run_sync(async { Input::new(&bytes[..]).length().await }).unwrap();
        assert_eq!(got, Length::Plain(n), "{n}");
    }
    let got = run_sync(async { Input::new(&[0xC3u8][..]).length().await }).unwrap();
    assert_eq!(got, Length::Encoded(3));
    assert!(run_sync(async { Input::new(&[0x82u8][..]).length().await }).is_err());
}

#[test]
fn integer_and_lzf_strings_decode_to_their_text() {
    let cases: [(&[u8], &str); 5] = [
        (&[0xC0, 0xF6], "-10"),
        (&[0xC1, 0x39, 0x30], "12345"),
        (&[0xC2, 0x00, 0x00, 0x00, 0x80], "-2147483648"),
        // LZF: clen 4, ulen 6: "a" then a back reference of 5 at distance 1.
        (&[0xC3, 4, 6, 0, b'a', 0x60, 0x00], "aaaaaa"),
        (&[0x03, b'a', b'b', b'c'], "abc"),
    ];
    for (bytes, want) in cases {
        let got = run_sync(async { Input::new(bytes).string(100).await }).unwrap();
        assert_eq!(got, b(want));
    }
}

#[test]
fn a_string_over_the_limit_is_refused_before_it_is_read() {
    let bytes = enc_len(1 << 40);
    let err = run_sync(async { Input::new(&bytes[..]).string(1 << 20).await }).unwrap_err();
    assert!(matches!(err, RdbError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn header_metadata_and_a_small_string_key_arrive_in_order() {
    let mut body = vec![0xFA];
    body.extend(enc_str(b"redis-ver"));
    body.extend(enc_str(b"7.0.15"));
    body.push(0xFA);
    body.extend(enc_str(b"redis-bits"));
    body.extend([0xC0, 64]);
    body.push(0xFE);
    body.extend(enc_len(3));
    body.push(0xFB);
    body.extend(enc_len(1));
    body.extend(enc_len(1));
    body.push(0xFC);
    body.extend(1_700_000_000_123i64.to_le_bytes());
    body.extend(key(0, b"k", &enc_str(b"v")));
    body.extend(key(0, b"k2", &enc_str(b"w")));
    let evs = events(&rdb(10, &body), RdbLimits::default()).await.unwrap();
    assert_eq!(evs[0], RdbEvent::Aux { key: b("redis-ver"), value: b("7.0.15") });
    assert_eq!(evs[1], RdbEvent::Aux { key: b("redis-bits"), value: b("64") });
    assert_eq!(evs[2], RdbEvent::SelectDb(3));
    assert_eq!(evs[3], RdbEvent::ResizeDb { db_size: 1, expires_size: 1 });
    let RdbEvent::Key(k) = &evs[4] else { panic!("{:?}", evs[4]) };
    assert_eq!(k.expire_at_ms, Some(1_700_000_000_123));
    assert_eq!(k.encoded, Bytes::from(enc_str(b"v")));
    assert_eq!(k.elements(10).unwrap(), vec![Elements::String(b("v"))]);
    let RdbEvent::Key(k2) = &evs[5] else { panic!("{:?}", evs[5]) };
    assert_eq!(k2.expire_at_ms, None, "an expiry applies to the next key only");
}

#[tokio::test]
async fn a_seconds_expiry_and_idle_and_freq_opcodes_are_read() {
    let mut body = vec![0xFD];
    body.extend(1_600_000_000i32.to_le_bytes());
    body.push(0xF8);
    body.extend(enc_len(100_000));
    body.push(0xF9);
    body.push(7);
    body.extend(key(0, b"k", &enc_str(b"v")));
    let evs = events(&rdb(9, &body), RdbLimits::default()).await.unwrap();
    let RdbEvent::Key(k) = &evs[0] else { panic!() };
    assert_eq!(k.expire_at_ms, Some(1_600_000_000_000));
}

fn hash_value(n: usize) -> (Vec<u8>, Vec<(Bytes, Bytes)>) {
    let mut v = enc_len(n as u64);
    let mut want = Vec::new();
    for i in 0..n {
        let (f, x) = (format!("field:{i}"), format!("value:{i}"));
        v.extend(enc_str(f.as_bytes()));
        v.extend(enc_str(x.as_bytes()));
        want.push((b(&f), b(&x)));
    }
    (v, want)
}

#[tokio::test]
async fn a_hash_within_restore_bytes_is_one_key_record() {
    let (value, want) = hash_value(20);
    let evs = events(&rdb(10, &key(4, b"h", &value)), small(4096, 8)).await.unwrap();
    assert_eq!(evs.len(), 1);
    let RdbEvent::Key(k) = &evs[0] else { panic!() };
    assert_eq!((k.kind.clone(), k.rdb_type), (ValueKind::Hash, 4));
    assert_eq!(k.encoded, Bytes::from(value));
    let chunks = k.elements(8).unwrap();
    assert_eq!(chunks.iter().map(Elements::len).collect::<Vec<_>>(), [8, 8, 4]);
    let all: Vec<_> = chunks
        .into_iter()
        .flat_map(|c| match c {
            Elements::Hash(v) => v,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(all, want);
}

#[tokio::test]
async fn a_hash_over_restore_bytes_becomes_a_big_key_with_every_field_in_bounded_chunks() {
    let (value, want) = hash_value(1000);
    let mut body = vec![0xFC];
    body.extend(42i64.to_le_bytes());
    body.extend(key(4, b"big", &value));
    body.extend(key(0, b"after", &enc_str(b"x")));
    let evs = events(&rdb(10, &body), small(300, 64)).await.unwrap();
    assert_eq!(evs[0], RdbEvent::BigKeyStart { key: b("big"), kind: ValueKind::Hash, expire_at_ms: Some(42) });
    let (chunks, sizes) = big_key(&evs);
    assert!(sizes.iter().all(|&s| (1..=64).contains(&s)), "{sizes:?}");
    let all: Vec<_> = chunks
        .into_iter()
        .flat_map(|c| match c {
            Elements::Hash(v) => v,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(all, want);
    let end = evs.iter().position(|e| *e == RdbEvent::BigKeyEnd).unwrap();
    let RdbEvent::Key(after) = &evs[end + 1] else { panic!() };
    assert_eq!((after.key.clone(), after.expire_at_ms), (b("after"), None));
}

#[tokio::test]
async fn a_restore_limit_of_zero_makes_even_an_empty_set_a_big_key() {
    let evs = events(&rdb(10, &key(2, b"s", &enc_len(0))), small(0, 4)).await.unwrap();
    assert_eq!(evs.len(), 2);
    assert!(matches!(evs[0], RdbEvent::BigKeyStart { kind: ValueKind::Set, .. }));
    assert_eq!(evs[1], RdbEvent::BigKeyEnd);
}

#[tokio::test]
async fn sorted_sets_with_text_and_binary_scores_yield_every_member() {
    // Type 3: text doubles, with the +inf/-inf/NaN bytes.
    let mut v3 = enc_len(4);
    for (m, s) in [(&b"a"[..], &[3u8, b'1', b'.', b'5'][..]), (b"b", &[254]), (b"c", &[255]), (b"d", &[2, b'-', b'2'])]
    {
        v3.extend(enc_str(m));
        v3.extend_from_slice(s);
    }
    // Type 5: binary doubles.
    let mut v5 = enc_len(300);
    for i in 0..300 {
        v5.extend(enc_str(format!("m{i}").as_bytes()));
        v5.extend((i as f64 / 4.0).to_le_bytes());
    }
    let mut body = key(3, b"z3", &v3);
    body.extend(key(5, b"z5", &v5));
    let evs = events(&rdb(10, &body), small(1000, 100)).await.unwrap();
    let RdbEvent::Key(z3) = &evs[0] else { panic!() };
    assert_eq!(
        z3.elements(10).unwrap(),
        vec![Elements::SortedSet(vec![
            (b("a"), 1.5),
            (b("b"), f64::INFINITY),
            (b("c"), f64::NEG_INFINITY),
            (b("d"), -2.0)
        ])]
    );
    assert!(matches!(evs[1], RdbEvent::BigKeyStart { kind: ValueKind::SortedSet, .. }));
    let (chunks, sizes) = big_key(&evs);
    assert_eq!(sizes, [100, 100, 100]);
    let Elements::SortedSet(last) = &chunks[2] else { panic!() };
    assert_eq!(last[99], (b("m299"), 299.0 / 4.0));
}

fn quicklist2(nodes: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut v = enc_len(nodes.len() as u64);
    for (container, blob) in nodes {
        v.extend(enc_len(*container));
        v.extend(enc_str(blob));
    }
    v
}

#[tokio::test]
async fn a_quicklist_of_listpacks_yields_every_element() {
    let names: Vec<String> = (0..90).map(|i| format!("e{i}")).collect();
    let refs: Vec<&[u8]> = names.iter().map(|s| s.as_bytes()).collect();
    let value = quicklist2(&[
        (2, listpack(&refs[..40])),
        (1, b"a plain node".to_vec()),
        (2, listpack(&[])),
        (2, listpack(&refs[40..])),
    ]);
    let mut want: Vec<Bytes> = names[..40].iter().map(|s| b(s)).collect();
    want.push(b("a plain node"));
    want.extend(names[40..].iter().map(|s| b(s)));

    // Whole: decoded by elements().
    let evs = events(&rdb(10, &key(18, b"l", &value)), small(1 << 16, 25)).await.unwrap();
    let RdbEvent::Key(k) = &evs[0] else { panic!() };
    let got: Vec<Bytes> = k
        .elements(25)
        .unwrap()
        .into_iter()
        .flat_map(|c| match c {
            Elements::List(v) => v,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, want);

    // Big: the same elements in chunks of at most 25.
    let evs = events(&rdb(10, &key(18, b"l", &value)), small(100, 25)).await.unwrap();
    let (chunks, sizes) = big_key(&evs);
    assert!(sizes.iter().all(|&s| (1..=25).contains(&s)), "{sizes:?}");
    let got: Vec<Bytes> = chunks
        .into_iter()
        .flat_map(|c| match c {
            Elements::List(v) => v,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_quicklist_node_with_an_unknown_container_is_an_error() {
    let value = quicklist2(&[(3, b"x".to_vec())]);
    let err = events(&rdb(10, &key(18, b"l", &value)), small(1 << 16, 25)).await.unwrap_err();
    assert!(err.to_string().contains("unknown container 3"), "{err}");
}

#[tokio::test]
async fn a_linked_list_and_a_set_in_big_mode_keep_file_order() {
    let mut v = enc_len(500);
    for i in 0..500 {
        v.extend(enc_str(format!("{i}").as_bytes()));
    }
    let mut body = key(1, b"l", &v);
    body.extend(key(2, b"s", &v));
    let evs = events(&rdb(6, &body), small(64, 7)).await.unwrap();
    let (chunks, sizes) = big_key(&evs);
    assert!(sizes.iter().all(|&s| s <= 7));
    let mut lists = Vec::new();
    let mut sets = Vec::new();
    for c in chunks {
        match c {
            Elements::List(v) => lists.extend(v),
            Elements::Set(v) => sets.extend(v),
            other => panic!("{other:?}"),
        }
    }
    let want: Vec<Bytes> = (0..500).map(|i| b(&i.to_string())).collect();
    assert_eq!((lists, sets), (want.clone(), want));
}

#[tokio::test]
async fn a_wrong_checksum_is_an_error_and_a_zero_checksum_is_not_checked() {
    let mut file = rdb(10, &key(0, b"k", &enc_str(b"v")));
    let n = file.len();
    file[n - 1] ^= 0x40;
    let err = events(&file, RdbLimits::default()).await.unwrap_err();
    assert!(matches!(err, RdbError::ChecksumMismatch { .. }), "{err}");
    file[n - 8..].fill(0);
    events(&file, RdbLimits::default()).await.unwrap();
}

#[tokio::test]
async fn a_version_four_file_has_no_checksum() {
    let file = rdb(4, &key(0, b"k", &enc_str(b"v")));
    let evs = events(&file, RdbLimits::default()).await.unwrap();
    assert_eq!(evs.len(), 1);
}

#[tokio::test]
async fn a_bad_magic_or_a_newer_version_is_refused() {
    let err = events(b"REDIX0010\xff", RdbLimits::default()).await.unwrap_err();
    assert!(matches!(err, RdbError::BadMagic(_)), "{err}");
    let err = events(&rdb(13, &[]), RdbLimits::default()).await.unwrap_err();
    assert!(matches!(err, RdbError::UnsupportedVersion(13)), "{err}");
}

/// A module id for `name` (9 charset characters) and encoding version 3.
fn module_id(name: &str) -> u64 {
    const CHARSET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = 0u64;
    for c in name.bytes() {
        id = (id << 6) | CHARSET.iter().position(|&x| x == c).unwrap() as u64;
    }
    (id << 10) | 3
}

#[tokio::test]
async fn a_module_2_value_is_read_whole_and_named() {
    let mut v = enc_len(module_id("ReJSON-RL"));
    v.extend([2, 0x05]); // UINT 5
    v.push(5);
    v.extend(enc_str(b"{\"a\":1}")); // STRING
    v.push(4);
    v.extend(1.5f64.to_le_bytes()); // DOUBLE
    v.push(3);
    v.extend(1.5f32.to_le_bytes()); // FLOAT
    v.push(0); // EOF
    let mut body = key(7, b"json", &v);
    body.push(0xF7); // module aux
    body.extend(enc_len(module_id("graphdata")));
    body.extend([2, 2]); // when opcode UINT, when = 2
    body.extend([1, 0x3f, 0]); // SINT, EOF
    let evs = events(&rdb(10, &body), RdbLimits::default()).await.unwrap();
    let RdbEvent::Key(k) = &evs[0] else { panic!() };
    assert_eq!(k.kind, ValueKind::Module("ReJSON-RL".into()));
    assert_eq!(k.encoded, Bytes::from(v));
    assert!(matches!(k.elements(10), Err(RdbError::NeedsRestore { .. })));
    assert_eq!(evs[1], RdbEvent::ModuleAux { module: "graphdata".into() });
}

#[tokio::test]
async fn a_pre_ga_module_value_names_the_key_and_the_module() {
    let mut v = enc_len(module_id("mymodule1"));
    v.extend([1, 2, 3]);
    let err = events(&rdb(8, &key(6, b"the-key", &v)), RdbLimits::default()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("the-key") && msg.contains("mymodule1"), "{msg}");
}

#[tokio::test]
async fn an_unknown_type_byte_is_named_and_later_calls_fail() {
    let file = rdb(10, &key(30, b"k", b""));
    let mut r = RdbReader::new(&file[..], RdbLimits::default());
    let err = r.next().await.unwrap_err();
    assert!(matches!(err, RdbError::UnknownType { type_byte: 30, offset: 9 }), "{err}");
    assert!(matches!(r.next().await, Err(RdbError::AfterError)));
}

#[tokio::test]
async fn a_function_library_is_handed_over_and_the_pre_ga_form_refused() {
    let code = b"#!lua name=mylib\nredis.register_function('f', function() return 1 end)";
    let mut body = vec![0xF5];
    body.extend(enc_str(code));
    let evs = events(&rdb(10, &body), RdbLimits::default()).await.unwrap();
    assert_eq!(evs, vec![RdbEvent::Function(Bytes::from(code.to_vec()))]);
    let err = events(&rdb(10, &[0xF6, 0]), RdbLimits::default()).await.unwrap_err();
    assert!(matches!(err, RdbError::Unsupported(_)), "{err}");
}

#[tokio::test]
async fn a_stream_with_groups_is_read_past_whole() {
    for t in [15u8, 19, 21] {
        let mut v = enc_len(1);
        v.extend(enc_str(&[0u8; 16]));
        v.extend(enc_str(&listpack(&[b"x"])));
        v.extend(enc_len(1)); // length
        v.extend(enc_len(5));
        v.extend(enc_len(0)); // last id
        if t >= 19 {
            v.extend([0, 0, 0, 0, 1]);
        }
        v.extend(enc_len(1)); // one group
        v.extend(enc_str(b"g"));
        v.extend([5, 0]);
        if t >= 19 {
            v.push(1);
        }
        v.extend(enc_len(1)); // PEL
        v.extend([7u8; 16]);
        v.extend([8u8; 8]);
        v.push(1);
        v.extend(enc_len(1)); // one consumer
        v.extend(enc_str(b"c"));
        v.extend([9u8; 8]);
        if t >= 21 {
            v.extend([9u8; 8]);
        }
        v.extend(enc_len(1));
        v.extend([7u8; 16]);
        let mut body = key(t, b"s", &v);
        body.extend(key(0, b"after", &enc_str(b"x")));
        let evs = events(&rdb(11, &body), RdbLimits::default()).await.unwrap();
        let RdbEvent::Key(k) = &evs[0] else { panic!() };
        assert_eq!((k.kind.clone(), k.encoded.clone()), (ValueKind::Stream, Bytes::from(v)));
        assert!(matches!(&evs[1], RdbEvent::Key(a) if a.key == b("after")));
    }
}

#[test]
fn blob_types_decode_into_their_elements() {
    let lp = listpack(&[b"f1", b"v1", b"f2", b"v2"]);
    let got = decode_value(16, &enc_str(&lp), 10).unwrap();
    assert_eq!(got, vec![Elements::Hash(vec![(b("f1"), b("v1")), (b("f2"), b("v2"))])]);
    let lp = listpack(&[b"m", b"2.5"]);
    assert_eq!(decode_value(17, &enc_str(&lp), 10).unwrap(), vec![Elements::SortedSet(vec![(b("m"), 2.5)])]);
    let lp = listpack(&[b"a", b"b", b"c"]);
    assert_eq!(
        decode_value(20, &enc_str(&lp), 2).unwrap(),
        vec![Elements::Set(vec![b("a"), b("b")]), Elements::Set(vec![b("c")])]
    );
    let mut trailing = enc_str(&lp);
    trailing.push(0);
    assert!(decode_value(20, &trailing, 2).is_err());
}

#[test]
fn chunks_are_moved_in_order_and_only_when_full_unless_flushed() {
    let mut pending = Elements::List((0..10).map(|i| b(&i.to_string())).collect());
    let mut out = VecDeque::new();
    move_chunks(&mut pending, 4, false, &mut out);
    assert_eq!(out.iter().map(Elements::len).collect::<Vec<_>>(), [4, 4]);
    assert_eq!(pending.len(), 2);
    move_chunks(&mut pending, 4, true, &mut out);
    assert_eq!(out.iter().map(Elements::len).collect::<Vec<_>>(), [4, 4, 2]);
    assert!(pending.is_empty());
    let Elements::List(last) = &out[2] else { panic!() };
    assert_eq!(last, &[b("8"), b("9")]);
}

#[test]
fn module_names_come_from_the_top_54_bits_of_the_id() {
    assert_eq!(module_name(module_id("ReJSON-RL")), "ReJSON-RL");
    assert_eq!(module_name(0), "AAAAAAAAA");
}

fn sample_file() -> Vec<u8> {
    let (hash, _) = hash_value(50);
    let mut body = vec![0xFA];
    body.extend(enc_str(b"redis-ver"));
    body.extend(enc_str(b"7.0.15"));
    body.push(0xFE);
    body.push(0);
    body.extend(key(4, b"h", &hash));
    body.extend(key(0, b"lzf", &[0xC3, 4, 6, 0, b'a', 0x60, 0x00]));
    let names: Vec<String> = (0..30).map(|i| format!("e{i}")).collect();
    let refs: Vec<&[u8]> = names.iter().map(|s| s.as_bytes()).collect();
    body.extend(key(18, b"l", &quicklist2(&[(2, listpack(&refs)), (1, b"p".to_vec())])));
    rdb(10, &body)
}

#[tokio::test]
async fn every_truncation_of_a_file_is_an_error_not_a_panic() {
    let file = sample_file();
    for limits in [RdbLimits::default(), small(100, 3)] {
        events(&file, limits).await.unwrap();
        for cut in 0..file.len() {
            let err = events(&file[..cut], limits).await.unwrap_err();
            assert!(matches!(err, RdbError::Truncated { .. }), "cut {cut}: {err}");
        }
    }
}

#[tokio::test]
async fn random_and_mutated_input_never_panics() {
    let file = sample_file();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let limits = small(100, 3);
    for i in 0..3000 {
        let mut bytes = if i % 2 == 0 {
            let mut v = b"REDIS0010".to_vec();
            let n = (next() % 200) as usize;
            v.extend((0..n).map(|_| next() as u8));
            v
        } else {
            file.clone()
        };
        for _ in 0..(1 + next() % 4) {
            let at = (next() as usize) % bytes.len();
            bytes[at] = next() as u8;
        }
        let mut r = RdbReader::new(&bytes[..], limits);
        for _ in 0..10_000 {
            match r.next().await {
                Ok(Some(RdbEvent::Key(k))) => {
                    let _ = k.elements(3);
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        // Every byte string as an encoded value, too.
        let _ = decode_value((next() % 22) as u8, &bytes[9..], 3);
    }
}

/// A ziplist of string entries (each under 64 bytes), as Redis before 7.0 wrote them.
fn ziplist(entries: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev = 0usize;
    for e in entries {
        assert!(e.len() < 64);
        let start = body.len();
        body.push(prev as u8); // prevlen, one byte below 254
        body.push(e.len() as u8);
        body.extend_from_slice(e);
        prev = body.len() - start;
    }
    let mut v = Vec::new();
    v.extend_from_slice(&((10 + body.len() + 1) as u32).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    v.extend_from_slice(&body);
    v.push(0xFF);
    v
}

#[tokio::test]
async fn a_quicklist_of_ziplists_yields_every_element_whole_and_big() {
    let names: Vec<String> = (0..60).map(|i| format!("z{i}")).collect();
    let refs: Vec<&[u8]> = names.iter().map(|s| s.as_bytes()).collect();
    let mut value = enc_len(3);
    value.extend(enc_str(&ziplist(&refs[..20])));
    value.extend(enc_str(&ziplist(&refs[20..50])));
    value.extend(enc_str(&ziplist(&refs[50..])));
    let want: Vec<Bytes> = names.iter().map(|s| b(s)).collect();
    let flat = |chunks: Vec<Elements>| -> Vec<Bytes> {
        chunks
            .into_iter()
            .flat_map(|c| match c {
                Elements::List(v) => v,
                other => panic!("{other:?}"),
            })
            .collect()
    };

    let evs = events(&rdb(9, &key(14, b"q", &value)), small(1 << 16, 16)).await.unwrap();
    let RdbEvent::Key(k) = &evs[0] else { panic!() };
    assert_eq!(k.kind, ValueKind::List);
    assert_eq!(flat(k.elements(16).unwrap()), want);

    let evs = events(&rdb(9, &key(14, b"q", &value)), small(50, 16)).await.unwrap();
    let (chunks, sizes) = big_key(&evs);
    assert!(sizes.iter().all(|&s| (1..=16).contains(&s)), "{sizes:?}");
    assert_eq!(flat(chunks), want);
}

#[tokio::test]
async fn pre_7_blob_encodings_arrive_whole_and_decode() {
    let zl_list = ziplist(&[b"a", b"b"]);
    let zl_zset = ziplist(&[b"m1", b"1.5", b"m2", b"-inf"]);
    let zl_hash = ziplist(&[b"f", b"v"]);
    let zipmap = [1u8, 1, b'k', 1, 0, b'v', 0xFF];
    let mut intset = 2u32.to_le_bytes().to_vec();
    intset.extend(2u32.to_le_bytes());
    intset.extend([1, 0, 0xFF, 0x7F]);
    let mut body = Vec::new();
    for (t, name, blob) in [
        (10u8, "l", &zl_list[..]),
        (12, "z", &zl_zset[..]),
        (13, "h", &zl_hash[..]),
        (9, "m", &zipmap[..]),
        (11, "i", &intset[..]),
    ] {
        body.extend(key(t, name.as_bytes(), &enc_str(blob)));
    }
    // Tiny restore limit: blobs are whole regardless.
    let evs = events(&rdb(7, &body), small(1, 10)).await.unwrap();
    let decoded: Vec<Vec<Elements>> = evs
        .iter()
        .map(|e| match e {
            RdbEvent::Key(k) => k.elements(10).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        decoded,
        vec![
            vec![Elements::List(vec![b("a"), b("b")])],
            vec![Elements::SortedSet(vec![(b("m1"), 1.5), (b("m2"), f64::NEG_INFINITY)])],
            vec![Elements::Hash(vec![(b("f"), b("v"))])],
            vec![Elements::Hash(vec![(b("k"), b("v"))])],
            vec![Elements::Set(vec![b("1"), b("32767")])],
        ]
    );
}
