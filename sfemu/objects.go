package sfemu

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
	"github.com/sfmigrate/sfmigrate/internal/yamlcheck"
)

// ObjectDef describes one sObject of the emulated org. Id, CreatedDate,
// LastModifiedDate and SystemModstamp exist on every object and are not
// listed in Fields.
type ObjectDef struct {
	// Name is the API name, e.g. "Product2" or "Migration_Status__c".
	Name string `yaml:"name"`
	// Label is the describe label; defaults to Name without "__c".
	Label string `yaml:"label,omitempty"`
	// KeyPrefix is the 3-character record ID prefix (describe keyPrefix).
	// Known standard objects get their real prefix, custom objects a00, a01...
	KeyPrefix string `yaml:"keyPrefix,omitempty"`
	// Fields lists the object's fields in describe order.
	Fields []FieldDef `yaml:"fields"`
}

// FieldDef describes one field, with the keys of design.md §5 plus a few
// optional ones (label, caseSensitive, restricted, idLookup).
type FieldDef struct {
	// Name is the field's API name.
	Name string `yaml:"name"`
	// Type is a Salesforce describe type: string, textarea, boolean, int,
	// double, currency, percent, date, datetime, email, phone, url,
	// picklist, reference (plus long, multipicklist, encryptedstring, combobox).
	Type string `yaml:"type"`
	// Label is the describe label; defaults to Name.
	Label string `yaml:"label,omitempty"`
	// Length is the maximum number of characters for text types.
	Length int `yaml:"length,omitempty"`
	// Precision and Scale limit numbers: Precision digits in total, Scale
	// of them after the decimal point.
	Precision int `yaml:"precision,omitempty"`
	Scale     int `yaml:"scale,omitempty"`
	// Required means createable, not nillable and not defaulted on create.
	Required bool `yaml:"required,omitempty"`
	// ExternalID marks an External ID field (upsert key, relationship target).
	ExternalID bool `yaml:"externalId,omitempty"`
	// Unique forbids two records with the same value.
	Unique bool `yaml:"unique,omitempty"`
	// CaseSensitive makes unique/external-id matching case-sensitive
	// (Salesforce's default for these fields is case-insensitive).
	CaseSensitive bool `yaml:"caseSensitive,omitempty"`
	// ReferenceTo is the parent object of a reference field.
	ReferenceTo string `yaml:"referenceTo,omitempty"`
	// RelationshipName is the prefix of relationship columns
	// ("Account__r" for Account__c); defaults from the field name.
	RelationshipName string `yaml:"relationshipName,omitempty"`
	// Values are the picklist values, in order.
	Values []string `yaml:"values,omitempty"`
	// Unrestricted lets a picklist accept values outside Values.
	Unrestricted bool `yaml:"unrestricted,omitempty"`
}

// fieldKind is the parsed form of FieldDef.Type.
type fieldKind uint8

const (
	kindString fieldKind = iota // string, textarea, phone, url, encryptedstring, combobox
	kindEmail
	kindPicklist
	kindMultiPicklist
	kindBoolean
	kindInt
	kindDouble // double, currency, percent
	kindDate
	kindDateTime
	kindReference
	kindID // the Id field itself
)

var fieldTypes = map[string]fieldKind{
	"string": kindString, "textarea": kindString, "phone": kindString, "url": kindString,
	"encryptedstring": kindString, "combobox": kindString,
	"email":    kindEmail,
	"picklist": kindPicklist, "multipicklist": kindMultiPicklist,
	"boolean": kindBoolean,
	"int":     kindInt, "long": kindInt,
	"double": kindDouble, "currency": kindDouble, "percent": kindDouble,
	"date": kindDate, "datetime": kindDateTime,
	"reference": kindReference,
}

// standardPrefixes are the real key prefixes of common standard objects.
var standardPrefixes = map[string]string{
	"Account": "001", "Contact": "003", "Opportunity": "006", "Lead": "00Q", "Case": "500",
	"User": "005", "Product2": "01t", "Pricebook2": "01s", "PricebookEntry": "01u",
	"Campaign": "701", "Task": "00T", "Event": "00U", "Contract": "800", "Order": "801",
	"Asset": "02i",
}

// ParseObjects reads object definitions in the YAML form of design.md §5
// (a top-level "objects" list). Unknown keys, unknown types, duplicate names
// and references to undefined objects are errors naming the object, field and line.
func ParseObjects(r io.Reader) ([]ObjectDef, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxObjectsBytes+1))
	if err != nil {
		return nil, fmt.Errorf("sfemu: read object definitions: %w", err)
	}
	if len(data) > MaxObjectsBytes {
		return nil, fmt.Errorf("sfemu: object definitions: the file is larger than %d bytes (%d MiB), the most the emulator reads", MaxObjectsBytes, MaxObjectsBytes>>20)
	}
	var doc struct {
		Objects []ObjectDef `yaml:"objects"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("sfemu: object definitions: the file is empty; expected a top-level 'objects:' list (see docs/emulator.md)")
		}
		return nil, fmt.Errorf("sfemu: object definitions: %w (keys allowed: objects[].name, label, keyPrefix, fields[].name, type, label, length, precision, scale, required, externalId, unique, caseSensitive, referenceTo, relationshipName, values, unrestricted)", err)
	}
	if err := yamlcheck.OneDocument(data); err != nil {
		return nil, fmt.Errorf("sfemu: object definitions: the file %w; put every object in one 'objects:' list", err)
	}
	if len(doc.Objects) == 0 {
		return nil, errors.New("sfemu: object definitions: no objects defined; expected a top-level 'objects:' list with at least one object")
	}
	if _, err := compileOrg(doc.Objects); err != nil {
		return nil, err
	}
	return doc.Objects, nil
}

// MaxObjectsBytes is the largest object definitions file ParseObjects reads.
const MaxObjectsBytes = 16 << 20

// DefaultObjects returns the built-in org: the demo objects (Account,
// Product2, Product_Price__c) and the status tracker Migration_Status__c.
func DefaultObjects() []ObjectDef {
	return []ObjectDef{
		{Name: "Account", Fields: []FieldDef{
			{Name: "Name", Type: "string", Length: 255, Required: true},
			{Name: "External_Id__c", Type: "string", Length: 80, ExternalID: true, Unique: true},
		}},
		{Name: "Product2", Fields: []FieldDef{
			{Name: "Name", Type: "string", Length: 255, Required: true},
			{Name: "ProductCode", Type: "string", Length: 255},
			{Name: "Description", Type: "textarea", Length: 4000},
			{Name: "Family", Type: "picklist", Values: []string{"Hardware", "Software", "Services", "Spare Parts"}},
			{Name: "IsActive", Type: "boolean"},
			{Name: "External_Id__c", Type: "string", Length: 80, ExternalID: true, Unique: true},
			{Name: "Price__c", Type: "currency", Precision: 18, Scale: 2},
			{Name: "Launch_Date__c", Type: "date"},
			{Name: "Last_Changed__c", Type: "datetime"},
			{Name: "Account__c", Type: "reference", ReferenceTo: "Account", RelationshipName: "Account__r"},
		}},
		{Name: "Product_Price__c", Fields: []FieldDef{
			{Name: "External_Id__c", Type: "string", Length: 80, ExternalID: true, Unique: true},
			{Name: "Product__c", Type: "reference", ReferenceTo: "Product2", RelationshipName: "Product__r"},
			{Name: "Price_List__c", Type: "string", Length: 40},
			{Name: "Currency__c", Type: "picklist", Values: []string{"EUR", "USD", "GBP", "CHF", "JPY"}},
			{Name: "Unit_Price__c", Type: "currency", Precision: 18, Scale: 4},
			{Name: "Min_Quantity__c", Type: "double", Precision: 18, Scale: 0},
			{Name: "Valid_From__c", Type: "date"},
			{Name: "Valid_To__c", Type: "date"},
			{Name: "Is_Active__c", Type: "boolean"},
			{Name: "Updated_At__c", Type: "datetime"},
		}},
		{Name: "Migration_Status__c", Fields: []FieldDef{
			{Name: "External_Ref__c", Type: "string", Length: 255, ExternalID: true, Unique: true},
			{Name: "Status__c", Type: "picklist", Values: []string{"Not Started", "In Progress", "Uploaded", "Failed"}},
			{Name: "Records_Total__c", Type: "double", Precision: 18, Scale: 0},
			{Name: "Records_Failed__c", Type: "double", Precision: 18, Scale: 0},
			{Name: "Last_Run_Id__c", Type: "string", Length: 80},
			{Name: "Message__c", Type: "textarea", Length: 32768},
		}},
	}
}

// object is the compiled, immutable form of an ObjectDef.
type object struct {
	name    string
	label   string
	prefix  string
	custom  bool
	fields  []*field          // every field: Id, defined fields, system dates
	data    []*field          // the stored fields (defined ones), in record order
	byName  map[string]*field // lower-cased name -> field
	byRel   map[string]*field // lower-cased relationship name -> reference field
	idField *field
	indexed []*field // unique or externalId fields: each has a value index in the table (field.index)
	refs    []*field // reference (lookup) fields
}

// field is the compiled form of a FieldDef.
type field struct {
	def        FieldDef
	name       string
	label      string
	kind       fieldKind
	slot       int // index in a record's values; -1 for Id and system fields
	index      int // index of the value index in the table; -1 when not indexed
	system     string
	length     int
	precision  int
	scale      int
	required   bool
	extID      bool
	unique     bool
	caseSens   bool
	refTo      string
	refObj     *object
	relName    string
	values     []string
	valueSet   map[string]string // exact and lower-cased value -> canonical value
	restricted bool
	custom     bool
}

// org is the compiled set of objects.
type org struct {
	objects []*object
	byName  map[string]*object // lower-cased
}

func (o *org) object(name string) *object { return o.byName[strings.ToLower(name)] }

// compileOrg validates the definitions and builds the lookup structures.
func compileOrg(defs []ObjectDef) (*org, error) {
	g := &org{byName: map[string]*object{}}
	customN := 0
	usedPrefix := map[string]string{}
	for i, d := range defs {
		if !validAPIName(d.Name) {
			return nil, fmt.Errorf("sfemu: object definitions: objects[%d]: name %s is not a valid API name (letters, digits, underscores, starting with a letter)", i, excerpt.Quote(d.Name))
		}
		key := strings.ToLower(d.Name)
		if _, dup := g.byName[key]; dup {
			return nil, fmt.Errorf("sfemu: object definitions: object %s is defined twice", d.Name)
		}
		ob := &object{name: d.Name, label: d.Label, custom: strings.HasSuffix(d.Name, "__c"),
			byName: map[string]*field{}, byRel: map[string]*field{}}
		if ob.label == "" {
			ob.label = strings.ReplaceAll(strings.TrimSuffix(d.Name, "__c"), "_", " ")
		}
		switch {
		case d.KeyPrefix != "":
			if len(d.KeyPrefix) != 3 || !isAlnum(d.KeyPrefix) {
				return nil, fmt.Errorf("sfemu: object definitions: object %s: keyPrefix %s must be 3 letters or digits", d.Name, excerpt.Quote(d.KeyPrefix))
			}
			ob.prefix = d.KeyPrefix
		case standardPrefixes[d.Name] != "":
			ob.prefix = standardPrefixes[d.Name]
		default:
			for {
				p := fmt.Sprintf("a%02d", customN)
				if customN >= 100 {
					p = "a" + string(base62[customN/62%62]) + string(base62[customN%62])
				}
				customN++
				if _, used := usedPrefix[p]; !used {
					ob.prefix = p
					break
				}
			}
		}
		if other, used := usedPrefix[ob.prefix]; used {
			return nil, fmt.Errorf("sfemu: object definitions: objects %s and %s have the same keyPrefix %s", other, d.Name, ob.prefix)
		}
		usedPrefix[ob.prefix] = d.Name
		ob.idField = &field{name: "Id", label: d.Name + " ID", kind: kindID, slot: -1, index: -1, system: "Id", length: 18}
		ob.fields = append(ob.fields, ob.idField)
		ob.byName["id"] = ob.idField
		for j, fd := range d.Fields {
			f, err := compileField(d.Name, j, fd)
			if err != nil {
				return nil, err
			}
			lk := strings.ToLower(f.name)
			if _, dup := ob.byName[lk]; dup || isSystemField(lk) {
				return nil, fmt.Errorf("sfemu: object definitions: object %s: field %s is defined twice (Id, CreatedDate, LastModifiedDate and SystemModstamp exist on every object)", d.Name, fd.Name)
			}
			f.slot = len(ob.data)
			ob.data = append(ob.data, f)
			ob.fields = append(ob.fields, f)
			ob.byName[lk] = f
			f.index = -1
			if f.extID || f.unique {
				f.index = len(ob.indexed)
				ob.indexed = append(ob.indexed, f)
			}
		}
		for _, sys := range []string{"CreatedDate", "LastModifiedDate", "SystemModstamp"} {
			f := &field{name: sys, label: sys, kind: kindDateTime, slot: -1, index: -1, system: sys}
			ob.fields = append(ob.fields, f)
			ob.byName[strings.ToLower(sys)] = f
		}
		g.objects = append(g.objects, ob)
		g.byName[key] = ob
	}
	// Second pass: resolve references now that every object is known.
	for _, ob := range g.objects {
		for _, f := range ob.data {
			if f.kind != kindReference {
				continue
			}
			parent := g.object(f.refTo)
			if parent == nil {
				return nil, fmt.Errorf("sfemu: object definitions: object %s: field %s: referenceTo %s is not a defined object", ob.name, f.name, excerpt.Quote(f.refTo))
			}
			f.refObj = parent
			f.refTo = parent.name
			ob.refs = append(ob.refs, f)
			rk := strings.ToLower(f.relName)
			if _, dup := ob.byRel[rk]; dup {
				return nil, fmt.Errorf("sfemu: object definitions: object %s: relationshipName %s is used twice", ob.name, f.relName)
			}
			ob.byRel[rk] = f
		}
	}
	return g, nil
}

func isSystemField(lower string) bool {
	switch lower {
	case "id", "createddate", "lastmodifieddate", "systemmodstamp":
		return true
	}
	return false
}

func compileField(obj string, j int, fd FieldDef) (*field, error) {
	where := fmt.Sprintf("object %s: field %s", obj, excerpt.Quote(fd.Name))
	if !validAPIName(fd.Name) {
		return nil, fmt.Errorf("sfemu: object definitions: %s (fields[%d]): not a valid API name", where, j)
	}
	kind, ok := fieldTypes[fd.Type]
	if !ok {
		return nil, fmt.Errorf("sfemu: object definitions: %s: unknown type %s (use one of string, textarea, boolean, int, long, double, currency, percent, date, datetime, email, phone, url, picklist, multipicklist, reference)", where, excerpt.Quote(fd.Type))
	}
	f := &field{def: fd, name: fd.Name, label: fd.Label, kind: kind, length: fd.Length,
		precision: fd.Precision, scale: fd.Scale, required: fd.Required, extID: fd.ExternalID,
		unique: fd.Unique, caseSens: fd.CaseSensitive, refTo: fd.ReferenceTo, relName: fd.RelationshipName,
		restricted: !fd.Unrestricted, custom: strings.HasSuffix(fd.Name, "__c")}
	if f.label == "" {
		f.label = strings.ReplaceAll(strings.TrimSuffix(fd.Name, "__c"), "_", " ")
	}
	if fd.Length < 0 || fd.Precision < 0 || fd.Scale < 0 {
		return nil, fmt.Errorf("sfemu: object definitions: %s: length, precision and scale must not be negative", where)
	}
	switch kind {
	case kindString, kindEmail:
		if f.length == 0 {
			f.length = 255
			if fd.Type == "textarea" {
				f.length = 32768
			} else if fd.Type == "phone" {
				f.length = 40
			}
		}
		if f.length > 131072 {
			return nil, fmt.Errorf("sfemu: object definitions: %s: length %d is over Salesforce's maximum of 131072", where, f.length)
		}
	case kindPicklist, kindMultiPicklist:
		if len(fd.Values) == 0 {
			return nil, fmt.Errorf("sfemu: object definitions: %s: a picklist needs 'values'", where)
		}
		f.valueSet = map[string]string{}
		for _, v := range fd.Values {
			if v == "" {
				return nil, fmt.Errorf("sfemu: object definitions: %s: empty picklist value", where)
			}
			f.valueSet[strings.ToLower(v)] = v
			f.valueSet[v] = v // exact spelling: found without folding
		}
		f.values = fd.Values
		if f.length == 0 {
			f.length = 255
			if kind == kindMultiPicklist {
				f.length = 4099
			}
		}
	case kindInt:
		if f.precision == 0 {
			f.precision = 9
			if fd.Type == "long" {
				f.precision = 18
			}
		}
		f.scale = 0
	case kindDouble:
		if f.precision == 0 {
			f.precision = 18
		}
		if f.scale > f.precision {
			return nil, fmt.Errorf("sfemu: object definitions: %s: scale %d is larger than precision %d", where, f.scale, f.precision)
		}
	case kindReference:
		if fd.ReferenceTo == "" {
			return nil, fmt.Errorf("sfemu: object definitions: %s: a reference needs 'referenceTo'", where)
		}
		if f.relName == "" {
			switch {
			case strings.HasSuffix(fd.Name, "__c"):
				f.relName = strings.TrimSuffix(fd.Name, "__c") + "__r"
			case strings.HasSuffix(fd.Name, "Id") && len(fd.Name) > 2:
				f.relName = strings.TrimSuffix(fd.Name, "Id")
			default:
				return nil, fmt.Errorf("sfemu: object definitions: %s: set 'relationshipName' (it cannot be derived from the field name)", where)
			}
		}
		if !validAPIName(f.relName) {
			return nil, fmt.Errorf("sfemu: object definitions: %s: relationshipName %s is not a valid API name", where, excerpt.Quote(f.relName))
		}
		f.length = 18
	}
	if fd.ReferenceTo != "" && kind != kindReference {
		return nil, fmt.Errorf("sfemu: object definitions: %s: referenceTo is only allowed on type reference", where)
	}
	if len(fd.Values) > 0 && kind != kindPicklist && kind != kindMultiPicklist {
		return nil, fmt.Errorf("sfemu: object definitions: %s: values are only allowed on picklists", where)
	}
	if fd.ExternalID {
		switch kind {
		case kindString, kindEmail, kindInt, kindDouble:
		default:
			return nil, fmt.Errorf("sfemu: object definitions: %s: externalId is only allowed on text, email and number fields, not %s", where, fd.Type)
		}
	}
	return f, nil
}

func validAPIName(s string) bool {
	if s == "" || len(s) > 80 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case (c >= '0' && c <= '9' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(base62, s[i]) < 0 {
			return false
		}
	}
	return true
}
