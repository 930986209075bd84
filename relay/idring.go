package relay

// idRing maps ids to values, keeping at most cap entries: a ring of ids in
// insertion order evicts the oldest when full. It grows with use, so an
// idle one costs nothing. Not safe for concurrent use; its owner's mutex
// guards it.
type idRing[V any] struct {
	cap  int
	m    map[ID]V
	ring []ID
	head int
}

// put sets id's value; a new id past the cap evicts the oldest.
func (r *idRing[V]) put(id ID, v V) {
	if _, ok := r.m[id]; ok {
		r.m[id] = v
		return
	}
	r.add(id, v)
}

// add records id, which the caller knows is absent (put's lookup would be
// a second one on a hot path); past the cap it evicts the oldest.
func (r *idRing[V]) add(id ID, v V) {
	if r.m == nil {
		r.m = make(map[ID]V)
	}
	if len(r.ring) < r.cap {
		r.ring = append(r.ring, id)
	} else {
		delete(r.m, r.ring[r.head])
		r.ring[r.head] = id
		r.head = (r.head + 1) % r.cap
	}
	r.m[id] = v
}

// get returns id's value.
func (r *idRing[V]) get(id ID) (V, bool) {
	v, ok := r.m[id]
	return v, ok
}

// reset forgets everything.
func (r *idRing[V]) reset() { r.m, r.ring, r.head = nil, nil, 0 }
