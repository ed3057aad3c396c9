package db

import (
	"time"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/model"
)

// NamedOrder is a validated sort order of role or group listings.
type NamedOrder struct {
	Field     model.NamedOrderField
	Direction model.OrderDirection
}

func (o NamedOrder) key(list, alias string) sortKey {
	k := sortKey{Tag: list + "/" + string(o.Field), IDCol: alias + ".id"}
	if o.Field == model.NamedOrderCreatedAt {
		k.Column, k.Time = alias+".created_at", true
	} else {
		k.Tag, k.Column = list+"/NAME", alias+".name"
	}
	return k
}

// PageTag is the cursor tag of the named list in this order, for ParsePage.
func (o NamedOrder) PageTag(list string) string { return o.key(list, "x").Tag }

// namedValue returns the sort position of a named row (a role or a group).
func (o NamedOrder) namedValue(name string, created time.Time, id uuid.UUID) (any, uuid.UUID) {
	if o.Field == model.NamedOrderCreatedAt {
		return created, id
	}
	return name, id
}
