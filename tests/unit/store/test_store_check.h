/*
 * test_store_check.h — white-box consistency check of a store, shared by the
 * store unit tests: walks every segment and large item and checks that the
 * index and the counters agree with what is stored, and that mem_used is
 * within the limit; and the store the eviction tests start from. Include
 * after cmocka.h and store_int.h.
 */
#ifndef TEST_STORE_CHECK_H
#define TEST_STORE_CHECK_H

#define KB 1024u
#define MB (1024u * 1024u)

/* A small store with CAS, items up to 1 MiB, its clock at 1: what the
 * eviction tests (probation, ghost table) start from. */
static inline struct store *mk_evict_store(size_t mem, size_t seg)
{
    struct store_config cfg = { .mem_limit = mem, .item_max = MB, .seg_size = seg, .use_cas = true };
    struct store *s = store_create(&cfg);
    assert_non_null(s);
    store_clock(s, 1);
    return s;
}

static inline void check_mem(struct store *s)
{
    struct store_stats st;
    store_get_stats(s, &st);
    assert_true(st.mem_used <= st.mem_limit);
    /* resident memory too: free segments that kept their pages count */
    assert_true(st.mem_used + (uint64_t)s->nfree_resident * s->seg_size <= st.mem_limit);
    uint32_t n = 0, r = 0;
    for (uint32_t id = s->free_head; id != NONE32; id = s->segs[id].next, n++)
        r += !s->segs[id].decommitted;
    assert_int_equal(n, s->nfree);
    assert_int_equal(r, s->nfree_resident);
}

/* Walks every segment and large item and checks that the index and the
 * counters agree with what is stored. */
static inline void check_consistency(struct store *s)
{
    uint64_t live = 0, bytes = 0;
    for (uint32_t id = 0; id < s->nsegs; id++) {
        struct seg *g = &s->segs[id];
        if (g->state == SEG_FREE || g->state == SEG_SPARE || g->state == SEG_HELD)
            continue;
        uint32_t n = 0, lb = 0;
        struct item it;
        for (uint32_t off = 0; off < g->wpos; off += it.size) {
            seg_item_decode(s->arena + (size_t)id * s->seg_size + off, &it);
            assert_true(it.size > 0);
            if (it.bits & IB_DEAD)
                continue;
            n++;
            lb += it.size;
            uint64_t h = store_hash(it.key, it.klen);
            assert_non_null(index_find_loc(s, h, id, off));
        }
        assert_int_equal(n, g->live_items);
        assert_int_equal(lb, g->live_bytes);
        live += n;
        bytes += lb;
    }
    for (uint32_t i = 0; i < s->nlarge_cap; i++) {
        if (!s->larges[i].mem || s->larges[i].held)
            continue;
        struct item it;
        seg_item_decode(s->larges[i].mem, &it);
        uint64_t h = store_hash(it.key, it.klen);
        assert_non_null(index_find_loc(s, h, s->nsegs + i, 0));
        live++;
        bytes += it.size;
    }
    /* the bucket marks the once-a-second walks go by: busy exactly where a
     * chain is, and every busy bucket seen for its class counters */
    for (unsigned b = 0; b < TTL_NBUCKETS; b++) {
        bool busy = (s->ttl_busy[b / 64] >> (b % 64)) & 1;
        assert_int_equal(busy, s->ttl[b].head != NONE32);
        if (busy)
            assert_true((s->cls_seen[b / 64] >> (b % 64)) & 1);
    }
    /* every index entry points at a live item of a used segment */
    uint64_t entries = 0;
    for (size_t b = 0; b < s->idx.nb; b++) {
        for (struct ibkt *bk = s->idx.prim + b; bk;
             bk = bk->next ? s->idx.ovf + (bk->next - 1) : NULL) {
            for (int i = 0; i < IDX_SLOTS; i++) {
                if (!bk->meta[i]) {
                    assert_int_equal(bk->loc[i], 0);
                    continue;
                }
                uint64_t e = slot_get(&bk->meta[i]);
                entries++;
                uint32_t sid = e_seg(s, e);
                if (sid < s->nsegs) {
                    assert_true(s->segs[sid].state == SEG_OPEN ||
                                s->segs[sid].state == SEG_SEALED);
                    assert_true(e_off(s, e) < s->segs[sid].wpos);
                } else {
                    assert_true(sid - s->nsegs < s->nlarge_cap);
                    assert_non_null(s->larges[sid - s->nsegs].mem);
                }
                struct item it;
                seg_item_decode(seg_loc_ptr(s, sid, e_off(s, e)), &it);
                assert_int_equal(it.bits & IB_DEAD, 0);
                uint64_t h = store_hash(it.key, it.klen);
                assert_int_equal(hash_tag(s, h), e & s->idx.tag_mask);
                /* it sits in the chain of one of its two candidates */
                assert_ptr_equal(index_find_loc(s, h, sid, e_off(s, e)), &bk->meta[i]);
            }
        }
    }
    assert_int_equal(entries, s->idx.nitems);
    assert_int_equal(live, s->idx.nitems);
    assert_int_equal(live, s->c.curr_items);
    assert_int_equal(bytes, s->c.bytes);
    check_mem(s);
}

#endif
