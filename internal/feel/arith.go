package feel

import (
	"time"

	"github.com/cockroachdb/apd/v3"
)

type decFn func(d, x, y *apd.Decimal) (apd.Condition, error)

// decOp applies a decimal operation; overflow, division by zero and the like give null.
func decOp(f decFn, x, y *apd.Decimal) Value {
	r := new(apd.Decimal)
	c, err := f(r, x, y)
	if err != nil || c.Overflow() || c.DivisionByZero() || c.DivisionImpossible() || c.DivisionUndefined() || c.InvalidOperation() || r.Form != apd.Finite {
		return nil
	}
	if c.Underflow() || c.Subnormal() {
		r.SetInt64(0)
	}
	return r
}

func add(l, r Value) (Value, error) {
	switch x := l.(type) {
	case *apd.Decimal:
		if y, ok := r.(*apd.Decimal); ok {
			return decOp(decCtx.Add, x, y), nil
		}
	case string:
		if y, ok := r.(string); ok {
			if err := checkString(len(x) + len(y)); err != nil {
				return nil, err
			}
			return x + y, nil
		}
	case DayTimeDuration:
		switch y := r.(type) {
		case DayTimeDuration:
			return dtOrNil(decOp(decCtx.Add, x.secs(), y.secs())), nil
		case Date, DateTime, Time:
			return add(r, l)
		}
	case YearMonthDuration:
		switch y := r.(type) {
		case YearMonthDuration:
			return YearMonthDuration{m: x.m + y.m}, nil
		case Date, DateTime:
			return add(r, l)
		}
	case Date:
		switch y := r.(type) {
		case DayTimeDuration:
			t, ok := addDTToTime(x.t, y, false)
			if !ok {
				return nil, nil
			}
			return DateTime{t: t}.date(), nil
		case YearMonthDuration:
			return Date{t: addMonths(x.t, y.m)}, nil
		}
	case DateTime:
		switch y := r.(type) {
		case DayTimeDuration:
			t, ok := addDTToTime(x.t, y, false)
			if !ok {
				return nil, nil
			}
			return DateTime{t: t, zone: x.zone}, nil
		case YearMonthDuration:
			return DateTime{t: addMonths(x.t, y.m), zone: x.zone}, nil
		}
	case Time:
		if y, ok := r.(DayTimeDuration); ok {
			return timePlus(x, y, false), nil
		}
	}
	return nil, nil
}

func dtOrNil(v Value) Value {
	if d, ok := v.(*apd.Decimal); ok {
		return DayTimeDuration{s: d}
	}
	return nil
}

func timePlus(t Time, d DayTimeDuration, sub bool) Value {
	var rem apd.Decimal
	decCtx.Rem(&rem, d.secs(), apd.New(86400, 0))
	ns, ok := dtFromSeconds(&rem).nanos()
	if !ok {
		return nil
	}
	if sub {
		ns = -ns
	}
	n := (t.ns + ns) % nsPerDay
	if n < 0 {
		n += nsPerDay
	}
	t.ns = n
	return t
}

// dateAsUTC turns a date into midnight UTC, the way dates meet date-times in subtraction.
func dateAsUTC(d Date) DateTime {
	return DateTime{t: d.t.In(fixedZone(0)), zone: zoneOffset}
}

func sub(l, r Value) Value {
	switch x := l.(type) {
	case *apd.Decimal:
		if y, ok := r.(*apd.Decimal); ok {
			return decOp(decCtx.Sub, x, y)
		}
	case DayTimeDuration:
		if y, ok := r.(DayTimeDuration); ok {
			return dtOrNil(decOp(decCtx.Sub, x.secs(), y.secs()))
		}
	case YearMonthDuration:
		if y, ok := r.(YearMonthDuration); ok {
			return YearMonthDuration{m: x.m - y.m}
		}
	case Date:
		switch y := r.(type) {
		case Date:
			return diffTimes(x.t, y.t)
		case DateTime:
			return sub(dateAsUTC(x), y)
		case DayTimeDuration:
			t, ok := addDTToTime(x.t, y, true)
			if !ok {
				return nil
			}
			return DateTime{t: t}.date()
		case YearMonthDuration:
			return Date{t: addMonths(x.t, -y.m)}
		}
	case DateTime:
		switch y := r.(type) {
		case DateTime:
			if (x.zone == zoneLocal) != (y.zone == zoneLocal) {
				return nil
			}
			if x.zone == zoneLocal {
				return diffTimes(wall(x.t), wall(y.t))
			}
			return diffTimes(x.t, y.t)
		case Date:
			return sub(x, dateAsUTC(y))
		case DayTimeDuration:
			t, ok := addDTToTime(x.t, y, true)
			if !ok {
				return nil
			}
			return DateTime{t: t, zone: x.zone}
		case YearMonthDuration:
			return DateTime{t: addMonths(x.t, -y.m), zone: x.zone}
		}
	case Time:
		switch y := r.(type) {
		case Time:
			if (x.zone == zoneLocal) != (y.zone == zoneLocal) {
				return nil
			}
			a := x.ns - int64(x.offsetSeconds())*int64(time.Second)
			b := y.ns - int64(y.offsetSeconds())*int64(time.Second)
			return dtFromNanos(a - b)
		case DayTimeDuration:
			return timePlus(x, y, true)
		}
	}
	return nil
}

func mul(l, r Value) Value {
	switch x := l.(type) {
	case *apd.Decimal:
		switch y := r.(type) {
		case *apd.Decimal:
			return decOp(decCtx.Mul, x, y)
		case DayTimeDuration, YearMonthDuration:
			return mul(r, l)
		}
	case DayTimeDuration:
		if y, ok := r.(*apd.Decimal); ok {
			return dtOrNil(decOp(decCtx.Mul, x.secs(), y))
		}
	case YearMonthDuration:
		if y, ok := r.(*apd.Decimal); ok {
			return ymOrNil(decOp(decCtx.Mul, apd.New(x.m, 0), y))
		}
	}
	return nil
}

// ymOrNil truncates a month count to whole months.
func ymOrNil(v Value) Value {
	d, ok := v.(*apd.Decimal)
	if !ok {
		return nil
	}
	tc := *decCtx
	tc.Rounding = apd.RoundDown
	var i apd.Decimal
	tc.RoundToIntegralValue(&i, d)
	m, err := i.Int64()
	if err != nil {
		return nil
	}
	return YearMonthDuration{m: m}
}

func div(l, r Value) Value {
	switch x := l.(type) {
	case *apd.Decimal:
		if y, ok := r.(*apd.Decimal); ok {
			if y.IsZero() {
				return nil
			}
			return decOp(decCtx.Quo, x, y)
		}
	case DayTimeDuration:
		switch y := r.(type) {
		case *apd.Decimal:
			if y.IsZero() {
				return nil
			}
			return dtOrNil(decOp(decCtx.Quo, x.secs(), y))
		case DayTimeDuration:
			if y.secs().IsZero() {
				return nil
			}
			return decOp(decCtx.Quo, x.secs(), y.secs())
		}
	case YearMonthDuration:
		switch y := r.(type) {
		case *apd.Decimal:
			if y.IsZero() {
				return nil
			}
			return ymOrNil(decOp(decCtx.Quo, apd.New(x.m, 0), y))
		case YearMonthDuration:
			if y.m == 0 {
				return nil
			}
			return decOp(decCtx.Quo, apd.New(x.m, 0), apd.New(y.m, 0))
		}
	}
	return nil
}

func pow(l, r Value) Value {
	x, ok1 := l.(*apd.Decimal)
	y, ok2 := r.(*apd.Decimal)
	if !ok1 || !ok2 {
		return nil
	}
	// Huge integer exponents would only overflow; refuse them before apd spends time.
	if y.Exponent >= 0 && y.NumDigits()+int64(y.Exponent) > 10 {
		return nil
	}
	return decOp(decCtx.Pow, x, y)
}
