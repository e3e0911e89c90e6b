// Distributed training: frames, codecs, ring all-reduce, coordinator, worker.
