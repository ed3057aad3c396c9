package model

import (
	"io"
	"strconv"
)

// The GraphQL enums are bound to these string types; gqlgen calls
// MarshalGQL/UnmarshalGQL, and UnmarshalGQL rejects unknown values.

func unmarshalEnum[T ~string](v any, valid func(T) bool, name string) (T, error) {
	s, ok := v.(string)
	if !ok || !valid(T(s)) {
		return "", Invalid("", "%v is not a valid %s", v, name)
	}
	return T(s), nil
}

func marshalEnum[T ~string](w io.Writer, v T) { _, _ = io.WriteString(w, strconv.Quote(string(v))) }

// MarshalGQL writes the enum value.
func (s UserStatus) MarshalGQL(w io.Writer) { marshalEnum(w, s) }

// UnmarshalGQL reads an enum value.
func (s *UserStatus) UnmarshalGQL(v any) (err error) {
	*s, err = unmarshalEnum(v, UserStatus.Valid, "UserStatus")
	return err
}

// MarshalGQL writes the enum value.
func (r GroupMemberRole) MarshalGQL(w io.Writer) { marshalEnum(w, r) }

// UnmarshalGQL reads an enum value.
func (r *GroupMemberRole) UnmarshalGQL(v any) (err error) {
	*r, err = unmarshalEnum(v, GroupMemberRole.Valid, "GroupMemberRole")
	return err
}

// Valid reports whether d is ASC or DESC.
func (d OrderDirection) Valid() bool { return d == Asc || d == Desc }

// MarshalGQL writes the enum value.
func (d OrderDirection) MarshalGQL(w io.Writer) { marshalEnum(w, d) }

// UnmarshalGQL reads an enum value.
func (d *OrderDirection) UnmarshalGQL(v any) (err error) {
	*d, err = unmarshalEnum(v, OrderDirection.Valid, "OrderDirection")
	return err
}

// Valid reports whether f is a known sort key.
func (f UserOrderField) Valid() bool {
	switch f {
	case UserOrderCreatedAt, UserOrderEmail, UserOrderUsername, UserOrderDisplayName:
		return true
	}
	return false
}

// MarshalGQL writes the enum value.
func (f UserOrderField) MarshalGQL(w io.Writer) { marshalEnum(w, f) }

// UnmarshalGQL reads an enum value.
func (f *UserOrderField) UnmarshalGQL(v any) (err error) {
	*f, err = unmarshalEnum(v, UserOrderField.Valid, "UserOrderField")
	return err
}

// Valid reports whether f is a known sort key.
func (f NamedOrderField) Valid() bool { return f == NamedOrderName || f == NamedOrderCreatedAt }

// MarshalGQL writes the enum value.
func (f NamedOrderField) MarshalGQL(w io.Writer) { marshalEnum(w, f) }

// UnmarshalGQL reads an enum value.
func (f *NamedOrderField) UnmarshalGQL(v any) (err error) {
	*f, err = unmarshalEnum(v, NamedOrderField.Valid, "order field")
	return err
}
