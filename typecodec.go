package xpc

import (
	"cmp"
	"encoding"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// encodeFunc writes v as one object. ind counts pointer and interface
// indirections since the last container (see tooDeep).
type encodeFunc func(w *writer, v reflect.Value, ind int) error

// decodeFunc reads the object whose tag t, at off, has just been consumed
// into v, which is settable.
type decodeFunc func(d *decState, v reflect.Value, t Type, off, ind int) error

// typeCodec converts one Go type. Codecs are built once per type and cached;
// they are immutable once published.
type typeCodec struct {
	enc encodeFunc
	dec decodeFunc
	// want is the one tag dec reads (besides null): any other is a
	// mismatch before dec is called. 0 when dec checks the tag itself.
	want     Type
	seesNull bool // dec handles TypeNull itself; otherwise null sets v to zero
}

// decode reads into v, applying the rule that null decodes to zero.
func (c *typeCodec) decode(d *decState, v reflect.Value, t Type, off, ind int) error {
	switch {
	case t == TypeNull && !c.seesNull:
		v.SetZero()
		return nil
	case c.want != 0 && t != c.want:
		return mismatch(c.want, t)
	}
	return c.dec(d, v, t, off, ind)
}

// Codecs for composite types refer to their parts' codecs by pointer, so a
// recursive type's codec can refer to itself while it is being built.
type (
	ptrCodec    struct{ elem *typeCodec }
	seqCodec    struct{ elem *typeCodec } // slices and arrays
	mapCodec    struct{ elem *typeCodec }
	structCodec struct {
		fields      []structField
		byName      map[string]int
		anyRequired bool // a field is tagged required
	}
)

type structField struct {
	name      string
	key       []byte // name, NUL, zero padding to a multiple of 4
	index     []int  // more than one element for a field of an embedded struct
	typ       reflect.Type
	omitEmpty bool
	omitZero  bool
	required  bool // strict decoding wants the key
	isZero    func(reflect.Value) bool
	codec     *typeCodec
}

// codecCache maps reflect.Type to *typeCodec, like encoding/json's cache.
var codecCache sync.Map

// codecFor returns the cached codec for t, building it (and the codecs of
// the types it contains) on first use.
func codecFor(t reflect.Type) *typeCodec {
	if c, ok := codecCache.Load(t); ok {
		return c.(*typeCodec)
	}
	b := codecBuilder{building: make(map[reflect.Type]*typeCodec)}
	c := b.codec(t)
	// Publish only complete codecs. Two goroutines racing here each build a
	// complete graph; either is correct.
	for bt, bc := range b.building {
		codecCache.LoadOrStore(bt, bc)
	}
	return c
}

type codecBuilder struct {
	building map[reflect.Type]*typeCodec
	structs  map[reflect.Type]*structCodec // shared by a struct's encoder and decoder
}

var (
	marshalerType       = reflect.TypeFor[Marshaler]()
	unmarshalerType     = reflect.TypeFor[Unmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	isZeroerType        = reflect.TypeFor[interface{ IsZero() bool }]()
	timeType            = reflect.TypeFor[time.Time]()
	uuidType            = reflect.TypeFor[UUID]()
	dateType            = reflect.TypeFor[Date]()
	nullType            = reflect.TypeFor[Null]()
	dictionaryType      = reflect.TypeFor[Dictionary]()
	errorObjectType     = reflect.TypeFor[ErrorObject]()
)

// objectTypes are the Go types of the Object implementations taken as they
// are, with the XPC type each holds.
var objectTypes = map[reflect.Type]Type{
	reflect.TypeFor[Bool]():          TypeBool,
	reflect.TypeFor[Int64]():         TypeInt64,
	reflect.TypeFor[Uint64]():        TypeUint64,
	reflect.TypeFor[Double]():        TypeDouble,
	reflect.TypeFor[Data]():          TypeData,
	reflect.TypeFor[String]():        TypeString,
	reflect.TypeFor[Array]():         TypeArray,
	reflect.TypeFor[*Dictionary]():   TypeDictionary,
	reflect.TypeFor[*ErrorObject]():  TypeError,
	reflect.TypeFor[*FD]():           TypeFD,
	reflect.TypeFor[*SharedMemory](): TypeShmem,
	reflect.TypeFor[*Endpoint]():     TypeEndpoint,
}

// notByValue are Object struct types that only make sense behind a pointer.
var notByValue = map[reflect.Type]bool{
	reflect.TypeFor[FD]():           true,
	reflect.TypeFor[SharedMemory](): true,
	reflect.TypeFor[Endpoint]():     true,
}

func (b *codecBuilder) codec(t reflect.Type) *typeCodec {
	if c, ok := codecCache.Load(t); ok {
		return c.(*typeCodec)
	}
	if c, ok := b.building[t]; ok {
		return c
	}
	c := &typeCodec{}
	b.building[t] = c
	enc := b.encoder(t)
	*c = b.decoder(t)
	c.enc = enc
	return c
}

// encoder chooses how t is written: a Marshaler method, then the types with
// a fixed XPC form, then a TextMarshaler method, then t's kind.
func (b *codecBuilder) encoder(t reflect.Type) encodeFunc {
	if t.Kind() == reflect.Interface {
		return encInterface
	}
	if t.Implements(marshalerType) {
		return encMarshaler
	}
	if t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(marshalerType) {
		return encAddrMarshaler
	}
	switch t {
	case timeType:
		return encTime
	case uuidType:
		return encUUID
	case dateType:
		return encDate
	case nullType:
		return encNull
	case dictionaryType, errorObjectType:
		return encObjectStruct
	}
	if notByValue[t] {
		return unsupportedEnc(t)
	}
	if _, ok := objectTypes[t]; ok && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8) {
		return encObject // pointers and Array; the scalar Objects are written by kind
	}
	if t.Implements(textMarshalerType) {
		return encText
	}
	if t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(textMarshalerType) {
		return encAddrText
	}
	switch t.Kind() {
	case reflect.Bool:
		return encBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return encInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return encUint
	case reflect.Float32, reflect.Float64:
		return encFloat
	case reflect.String:
		return encString
	case reflect.Slice:
		if isByteElem(t.Elem()) {
			return encBytes
		}
		return (&seqCodec{elem: b.codec(t.Elem())}).encode
	case reflect.Array:
		if isByteElem(t.Elem()) {
			return encByteArray
		}
		return (&seqCodec{elem: b.codec(t.Elem())}).encode
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return unsupportedEnc(t)
		}
		return (&mapCodec{elem: b.codec(t.Elem())}).encode
	case reflect.Struct:
		return b.structCodec(t).encode
	case reflect.Pointer:
		return (&ptrCodec{elem: b.codec(t.Elem())}).encode
	}
	return unsupportedEnc(t)
}

// decoder chooses how t is read, in the same order as encoder. It returns
// the codec's decoding half.
func (b *codecBuilder) decoder(t reflect.Type) typeCodec {
	if t.Kind() == reflect.Interface {
		return typeCodec{dec: decInterface, seesNull: true}
	}
	if t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(unmarshalerType) {
		return typeCodec{dec: decUnmarshaler, seesNull: true}
	}
	switch t {
	case timeType:
		return typeCodec{dec: decTime, want: TypeDate}
	case uuidType:
		return typeCodec{dec: decUUID}
	case dateType:
		return typeCodec{dec: decDate, want: TypeDate}
	case nullType:
		return typeCodec{dec: decNull}
	case dictionaryType:
		return typeCodec{dec: decObjectStruct, want: TypeDictionary}
	case errorObjectType:
		return typeCodec{dec: decObjectStruct, want: TypeError}
	}
	if notByValue[t] {
		return typeCodec{dec: unsupportedDec(t)}
	}
	if want, ok := objectTypes[t]; ok {
		return typeCodec{dec: decObject, want: want}
	}
	if t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return typeCodec{dec: decText, want: TypeString}
	}
	return b.kindDecoder(t)
}

// kindDecoder chooses how t is read by its kind.
func (b *codecBuilder) kindDecoder(t reflect.Type) typeCodec {
	switch t.Kind() {
	case reflect.Bool:
		return typeCodec{dec: decBool, want: TypeBool}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return typeCodec{dec: decInt}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return typeCodec{dec: decUint}
	case reflect.Float32, reflect.Float64:
		return typeCodec{dec: decFloat}
	case reflect.String:
		return typeCodec{dec: decString, want: TypeString}
	case reflect.Slice:
		if isByteElem(t.Elem()) {
			return typeCodec{dec: decBytes, want: TypeData}
		}
		return typeCodec{dec: (&seqCodec{elem: b.codec(t.Elem())}).decodeSlice, want: TypeArray}
	case reflect.Array:
		if isByteElem(t.Elem()) {
			return typeCodec{dec: decByteArray, want: TypeData}
		}
		return typeCodec{dec: (&seqCodec{elem: b.codec(t.Elem())}).decodeArray, want: TypeArray}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return typeCodec{dec: unsupportedDec(t)}
		}
		return typeCodec{dec: (&mapCodec{elem: b.codec(t.Elem())}).decode, want: TypeDictionary}
	case reflect.Struct:
		return typeCodec{dec: b.structCodec(t).decode, want: TypeDictionary}
	case reflect.Pointer:
		return typeCodec{dec: (&ptrCodec{elem: b.codec(t.Elem())}).decode}
	}
	return typeCodec{dec: unsupportedDec(t)}
}

// isByteElem reports whether a slice or array of e is data: e is a byte
// kind with no methods of its own that would make it an element.
func isByteElem(e reflect.Type) bool {
	if e.Kind() != reflect.Uint8 {
		return false
	}
	p := reflect.PointerTo(e)
	return !p.Implements(marshalerType) && !p.Implements(textMarshalerType) &&
		!p.Implements(unmarshalerType) && !p.Implements(textUnmarshalerType)
}

func unsupportedEnc(t reflect.Type) encodeFunc {
	return func(*writer, reflect.Value, int) error { return unsupported(t) }
}

func unsupportedDec(t reflect.Type) decodeFunc {
	return func(*decState, reflect.Value, Type, int, int) error { return unsupported(t) }
}

// structCodec builds the field table of a struct type; the structCodec is
// shared by its encoder and decoder.
func (b *codecBuilder) structCodec(t reflect.Type) *structCodec {
	if c, ok := b.structs[t]; ok {
		return c
	}
	fields := structFields(t)
	c := &structCodec{fields: fields, byName: make(map[string]int, len(fields))}
	if b.structs == nil {
		b.structs = make(map[reflect.Type]*structCodec)
	}
	b.structs[t] = c
	for i := range c.fields {
		f := &c.fields[i]
		f.codec = b.codec(f.typ)
		c.byName[f.name] = i
		c.anyRequired = c.anyRequired || f.required
	}
	return c
}

// structFields lists the fields of struct type t that become keys, in field
// order, with embedded structs flattened by encoding/json's rules.
func structFields(t reflect.Type) []structField {
	var all []fieldCandidate
	next := []embedded{{typ: t}}
	visited := map[reflect.Type]bool{}
	for depth := 0; len(next) > 0; depth++ {
		current := next
		next = nil
		for _, q := range current {
			if visited[q.typ] {
				continue
			}
			visited[q.typ] = true
			for i := range q.typ.NumField() {
				f, inner, ok := candidateField(q, i, depth)
				if inner.typ != nil {
					next = append(next, inner)
				} else if ok {
					all = append(all, f)
				}
			}
		}
	}
	return dominantFields(all)
}

// fieldCandidate is a field that may become a key, and how deep in
// embedded structs it was found.
type fieldCandidate struct {
	structField
	depth  int
	tagged bool
}

// embedded is a struct type whose fields become keys of an outer struct, at
// index below it.
type embedded struct {
	typ   reflect.Type
	index []int
}

// candidateField looks at field i of q.typ: it returns the field as a
// candidate key (ok), or, for an untagged embedded struct, that struct to
// flatten (inner), or neither for a field that is left out.
func candidateField(q embedded, i, depth int) (f fieldCandidate, inner embedded, ok bool) {
	sf := q.typ.Field(i)
	ft := sf.Type
	if sf.Anonymous {
		et := ft
		if et.Kind() == reflect.Pointer {
			et = et.Elem()
		}
		if !sf.IsExported() && et.Kind() != reflect.Struct {
			return f, inner, false
		}
	} else if !sf.IsExported() {
		return f, inner, false
	}
	tag := sf.Tag.Get("xpc")
	if tag == "-" {
		return f, inner, false
	}
	name, opts, _ := strings.Cut(tag, ",")
	if !validCString(name) {
		name = ""
	}
	index := append(slices.Clone(q.index), i)
	et := ft
	if et.Kind() == reflect.Pointer && et.Name() == "" {
		et = et.Elem()
	}
	if name == "" && sf.Anonymous && et.Kind() == reflect.Struct {
		return f, embedded{typ: et, index: index}, false
	}
	if !sf.IsExported() {
		return f, inner, false // an unexported embedded type under a tag name
	}
	f = fieldCandidate{depth: depth, tagged: name != ""}
	if name == "" {
		name = sf.Name
	}
	f.name = name
	f.key = paddedKey(name)
	f.index = index
	f.typ = ft
	for _, o := range strings.Split(opts, ",") {
		switch o {
		case "omitempty":
			f.omitEmpty = true
		case "omitzero":
			f.omitZero = true
			f.isZero = zeroTest(ft)
		case "required":
			f.required = true
		}
	}
	return f, inner, true
}

// dominantFields picks one field per name: the shallowest, then a tagged
// one; a tie leaves the name out. The result is in field order.
func dominantFields(all []fieldCandidate) []structField {
	slices.SortStableFunc(all, func(a, b fieldCandidate) int {
		return cmp.Or(strings.Compare(a.name, b.name), cmp.Compare(a.depth, b.depth), boolRank(a.tagged, b.tagged))
	})
	var out []structField
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].name == all[i].name {
			j++
		}
		if j-i == 1 || all[i+1].depth > all[i].depth || all[i].tagged && !all[i+1].tagged {
			out = append(out, all[i].structField)
		}
		i = j
	}
	slices.SortFunc(out, func(a, b structField) int { return slices.Compare(a.index, b.index) })
	return out
}

// boolRank orders true before false.
func boolRank(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

// paddedKey is a dictionary key as written: the name, a NUL, zero padding.
func paddedKey(name string) []byte {
	k := make([]byte, (len(name)+1+3)&^3)
	copy(k, name)
	return k
}

// zeroTest returns omitzero's test for t: its IsZero method if it has one,
// else reflect's.
func zeroTest(t reflect.Type) func(reflect.Value) bool {
	switch {
	case t == timeType:
		return func(v reflect.Value) bool {
			tv, _ := reflect.TypeAssert[time.Time](v)
			return tv.IsZero()
		}
	case t.Kind() != reflect.Interface && t.Implements(isZeroerType):
		return func(v reflect.Value) bool {
			if (t.Kind() == reflect.Pointer) && v.IsNil() {
				return true
			}
			z, _ := reflect.TypeAssert[interface{ IsZero() bool }](v)
			return z.IsZero()
		}
	case t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(isZeroerType):
		return func(v reflect.Value) bool {
			if !v.CanAddr() {
				return v.IsZero()
			}
			z, _ := reflect.TypeAssert[interface{ IsZero() bool }](v.Addr())
			return z.IsZero()
		}
	}
	return reflect.Value.IsZero
}
