package gateway

import (
	"context"
	"sync"
	"time"

	"dicomgate/gateway/store"
	"dicomgate/mis"
)

// indexer writes the index rows of spooled instances in batches, one
// transaction (one disk sync) for however many instances arrived
// meanwhile. An instance is acknowledged once its spool file is durable and
// its header is known to join a study: the spool file is the record, and
// the index row is derived from it. Rows not yet written when the process
// dies are written at the next start by Recover, which indexes every
// spooled file the store does not know.
type indexer struct {
	g     *Gateway
	items chan indexItem
	once  sync.Once
}

type indexItem struct {
	n     store.NewInstance
	facts mis.Instance
}

// maxIndexBatch bounds one transaction.
const maxIndexBatch = 256

func newIndexer(g *Gateway) *indexer {
	return &indexer{g: g, items: make(chan indexItem, 4*maxIndexBatch)}
}

// add queues an instance's index row; it waits when the writer is behind,
// which slows the senders instead of growing memory.
func (ix *indexer) add(ctx context.Context, it indexItem) error {
	ix.once.Do(func() { go ix.run() })
	select {
	case ix.items <- it:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run writes batches for the life of the process: rows must keep being
// written while the DICOM listener acknowledges instances.
func (ix *indexer) run() {
	ctx := context.Background()
	batch := make([]indexItem, 0, maxIndexBatch)
	for {
		batch = append(batch[:0], <-ix.items)
	fill:
		for len(batch) < maxIndexBatch {
			select {
			case it := <-ix.items:
				batch = append(batch, it)
			default:
				break fill
			}
		}
		ix.write(ctx, batch)
	}
}

// write commits one batch, retrying until the store takes it: the files
// are durable, so giving up would only delay them to the next start.
func (ix *indexer) write(ctx context.Context, batch []indexItem) {
	ns := make([]store.NewInstance, len(batch))
	for i, it := range batch {
		ns[i] = it.n
	}
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, 10*time.Second) {
		created, err := ix.g.store.PutInstances(ctx, ns)
		if err == nil {
			for i, ok := range created {
				if ok && ix.g.eager != nil {
					ix.g.eager.offer(eagerItem{studyUID: batch[i].facts.StudyInstanceUID, path: batch[i].n.Instance.Path, facts: batch[i].facts})
				}
			}
			return
		}
		if len(ns) > 1 {
			// A conflict with another writer fails the whole batch:
			// write the rows one by one instead.
			for _, it := range batch {
				ix.write(ctx, []indexItem{it})
			}
			return
		}
		if ctx.Err() != nil {
			return // shutting down: Recover writes the rows at the next start
		}
		ix.g.log.Error("writing index rows; retrying", "instances", len(ns), "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}
