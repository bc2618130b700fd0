//! The format's own tests: what the writer lays out, the parser reads back exactly, for any
//! declaration; and the parser's refusals.

use std::borrow::Cow;

use proptest::prelude::*;

use super::format::{ChannelEntry, Header, DESC_SIZE, HEADER_SIZE, READY, READY_OFFSET};
use super::parse::Layout;
use super::spec::{ChannelSpec, ObjectSpec};
use super::{align_up, ChannelKind, Ctrl, Direction, FormatError, Plan};
use crate::schema::{self, Field, FieldType, Primitive, Schema};

fn no_init(_: Ctrl<'_>, _: u32) {}

/// A schema of `n` primitive fields of the given tags, laid out without padding (largest
/// alignment first), under `name`.
fn schema_of(name: &str, mut prims: Vec<Primitive>) -> Schema {
    prims.sort_by_key(|p| std::cmp::Reverse(p.size()));
    let mut offset = 0;
    let fields: Vec<Field> = prims
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let f = Field {
                name: Cow::Owned(format!("f{i}")),
                offset,
                size: p.size(),
                ty: FieldType::Primitive(*p),
                since: 1,
            };
            offset += p.size();
            f
        })
        .collect();
    let align = prims.first().map_or(1, |p| p.size());
    let size = align_up(offset, align).unwrap();
    // Pad the tail with bytes so that the schema has no padding.
    let mut fields = fields;
    let mut at = offset;
    while at < size {
        fields.push(Field {
            name: Cow::Owned(format!("pad{at}")),
            offset: at,
            size: 1,
            ty: FieldType::Primitive(Primitive::U8),
            since: 1,
        });
        at += 1;
    }
    Schema {
        name: Cow::Owned(name.to_owned()),
        size,
        align,
        fields: Cow::Owned(fields),
        appendable: false,
    }
}

fn object(id: u64, s: Schema) -> ObjectSpec {
    ObjectSpec {
        id,
        fingerprint: schema::fingerprint(&s),
        size: s.size,
        align: s.align,
        schema: Cow::Owned(s),
    }
}

#[derive(Debug, Clone)]
struct Decl {
    kind: ChannelKind,
    direction: Direction,
    capacity: u32,
    notify: bool,
    user_meta: Vec<u8>,
    objects: Vec<Vec<Primitive>>,
}

fn primitive() -> impl Strategy<Value = Primitive> {
    (1u8..=10).prop_map(|t| Primitive::from_tag(t).unwrap())
}

fn decl() -> impl Strategy<Value = Decl> {
    (
        prop_oneof![
            Just(ChannelKind::State),
            Just(ChannelKind::Queue),
            Just(ChannelKind::Region),
            Just(ChannelKind::Record)
        ],
        prop_oneof![
            Just(Direction::CreatorToPeer),
            Just(Direction::PeerToCreator)
        ],
        1u32..300,
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..40),
        prop::collection::vec(prop::collection::vec(primitive(), 1..6), 1..4),
    )
        .prop_map(
            |(kind, direction, capacity, notify, user_meta, mut objects)| {
                if kind != ChannelKind::State {
                    objects.truncate(1);
                }
                Decl {
                    kind,
                    direction,
                    capacity,
                    notify,
                    user_meta,
                    objects,
                }
            },
        )
}

fn specs(decls: &[Decl]) -> Vec<ChannelSpec> {
    decls
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let slots = match d.kind {
                ChannelKind::State => 3,
                ChannelKind::Queue => d.capacity + 2,
                ChannelKind::Region | ChannelKind::Record => 1,
            };
            let mut spec =
                ChannelSpec::new(format!("channel/{i}"), d.kind, d.direction, slots, no_init)
                    .notify(d.notify)
                    .user_meta(d.user_meta.clone());
            // A record channel's ring: from the smallest to a few KiB.
            spec.ring = 256 + u64::from(d.capacity) * 16;
            for (j, prims) in d.objects.iter().enumerate() {
                let s = schema_of(&format!("Object{i}_{j}"), prims.clone());
                spec = spec.object_spec(object(j as u64 + 1, s));
            }
            spec
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// `parse(write(plan(specs)))` gives back every declared fact, and the image's size is the
    /// plan's.
    #[test]
    fn parse_of_write_of_plan_round_trips(
        decls in prop::collection::vec(decl(), 0..6),
        cache_line in prop_oneof![Just(32u32), Just(64), Just(128), Just(256), Just(4096)],
    ) {
        let specs = specs(&decls);
        let plan = Plan::new(&specs, cache_line, 42, 7).unwrap();
        let img = plan.image();
        prop_assert_eq!(img.len() as u64, plan.size());
        prop_assert_eq!(plan.size() % 4096, 0);
        let layout = Layout::parse(&img).unwrap();
        prop_assert_eq!(layout.header, plan.header_ready());
        prop_assert_eq!(layout.channels.len(), specs.len());
        for (c, s) in layout.channels.iter().zip(&specs) {
            prop_assert_eq!(&c.name, &s.name);
            prop_assert_eq!(c.kind, s.kind);
            prop_assert_eq!(c.direction, s.direction);
            prop_assert_eq!(c.slot_count, s.slots);
            prop_assert_eq!(c.notify, s.notify);
            prop_assert_eq!(&c.user_meta, &s.user_meta);
            prop_assert_eq!(c.ctrl_len, s.kind.ctrl_len(s.slots, u64::from(cache_line)));
            prop_assert_eq!(c.ctrl_offset + c.ctrl_len, c.buffer_offset);
            prop_assert_eq!(c.buffer_offset % u64::from(cache_line), 0);
            prop_assert_eq!(c.slot_stride % u64::from(cache_line), 0);
            prop_assert_eq!(c.objects.len(), s.objects.len());
            for (o, d) in c.objects.iter().zip(&s.objects) {
                prop_assert_eq!(o.id, d.id);
                prop_assert_eq!(o.fingerprint, d.fingerprint);
                prop_assert_eq!(o.size, d.size);
                prop_assert_eq!(&o.schema, &*d.schema);
                prop_assert_eq!(o.offset % o.align, 0);
                prop_assert!(o.offset + o.size <= c.slot_stride);
            }
        }
    }

    /// Any single corrupted byte of the header, table or metadata is either still a valid
    /// segment or a clean error: never a panic.
    #[test]
    fn corrupted_images_never_panic(
        decls in prop::collection::vec(decl(), 1..4),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let plan = Plan::new(&specs(&decls), 64, 1, 1).unwrap();
        let mut img = plan.image();
        let h = plan.header;
        let meta = (h.metadata_offset + h.metadata_len) as usize;
        for (at, x) in flips {
            let i = at.index(meta);
            img[i] ^= x;
        }
        let _ = Layout::parse(&img);
    }
}

fn two_channel_image() -> (Plan, Vec<u8>) {
    let s = schema_of("Pose", vec![Primitive::F64, Primitive::F64]);
    let specs = vec![
        ChannelSpec::new(
            "a".into(),
            ChannelKind::State,
            Direction::CreatorToPeer,
            3,
            no_init,
        )
        .object_spec(object(1, s.clone())),
        ChannelSpec::new(
            "b".into(),
            ChannelKind::Queue,
            Direction::PeerToCreator,
            6,
            no_init,
        )
        .object_spec(object(2, s)),
    ];
    let plan = Plan::new(&specs, 128, 1, 1).unwrap();
    let img = plan.image();
    (plan, img)
}

fn put<T: zerocopy::IntoBytes + zerocopy::Immutable>(img: &mut [u8], at: u64, v: &T) {
    let b = v.as_bytes();
    img[at as usize..at as usize + b.len()].copy_from_slice(b);
}

fn corrupt_field(err: FormatError) -> String {
    match err {
        FormatError::Corrupt { field, .. } => field,
        other => panic!("expected a corrupt field, got {other:?}"),
    }
}

#[test]
fn a_header_the_creator_has_not_finished_is_refused() {
    let (_, mut img) = two_channel_image();
    img[READY_OFFSET as usize] ^= 1;
    assert_eq!(
        corrupt_field(Layout::parse(&img).unwrap_err()),
        "header.ready"
    );
}

#[test]
fn overlapping_buffers_are_refused() {
    let (plan, mut img) = two_channel_image();
    let h: Header = plan.header;
    let entry_at = |i: u64| h.table_offset + i * u64::from(h.entry_size);
    let mut second: ChannelEntry = plan.channels[1].entry;
    let first = plan.channels[0].entry;
    // Point the queue's control block and slots at the state channel's.
    second.ctrl_offset = first.ctrl_offset;
    second.buffer_offset = first.ctrl_offset + second.ctrl_len;
    put(&mut img, entry_at(1), &second);
    let field = corrupt_field(Layout::parse(&img).unwrap_err());
    assert!(
        field.contains("channel[1]") || field.contains("offset"),
        "{field}"
    );
}

#[test]
fn descriptors_pointing_at_the_same_bytes_cannot_multiply_the_work() {
    // A descriptor pointing at the whole metadata (as a peer could make every one of 65,536
    // descriptors do): the metadata's parts then add up to more than the metadata, which is
    // refused before anything is decoded from it.
    let s = schema_of("Wide", vec![Primitive::U64; 5]);
    let spec = ChannelSpec::new(
        "wide".into(),
        ChannelKind::State,
        Direction::CreatorToPeer,
        3,
        no_init,
    )
    .object_spec(object(1, s.clone()))
    .object_spec(object(2, s));
    let plan = Plan::new(&[spec], 64, 1, 1).unwrap();
    let mut img = plan.image();
    let c = &plan.channels[0];
    let mut d = c.descs[1];
    d.schema_offset = plan.header.metadata_offset;
    d.schema_len = plan.header.metadata_len;
    put(&mut img, c.entry.objects_offset + DESC_SIZE, &d);
    let err = Layout::parse(&img).unwrap_err();
    assert!(format!("{err:?}").contains("overlap"), "{err:?}");
}

#[test]
fn a_segment_smaller_than_its_header_is_refused() {
    let (_, img) = two_channel_image();
    let err = Layout::parse(&img[..HEADER_SIZE as usize - 1]).unwrap_err();
    assert_eq!(corrupt_field(err), "segment size");
}

#[test]
fn the_ready_word_is_the_last_header_field_written() {
    let (plan, img) = two_channel_image();
    assert_eq!(plan.header.ready, 0, "the plan's header is not ready");
    assert_eq!(
        &img[READY_OFFSET as usize..READY_OFFSET as usize + 4],
        &READY.to_le_bytes()
    );
}
