package ratespec

import (
	"testing"
	"time"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		in      string
		want    Policy
		wantErr bool
	}{
		{in: "60/m", want: Policy{Rate: Rate{60, time.Minute}}},
		{in: "600/h burst 100", want: Policy{Rate{600, time.Hour}, 100}},
		{in: "5/s", want: Policy{Rate: Rate{5, time.Second}}},
		{in: "100/10s", want: Policy{Rate: Rate{100, 10 * time.Second}}},
		{in: "1000/d", want: Policy{Rate: Rate{1000, 24 * time.Hour}}},
		{in: "60/x", wantErr: true},
		{in: "60", wantErr: true},
		{in: "0/m", wantErr: true},
		{in: "-1/m", wantErr: true},
		{in: "a/m", wantErr: true},
		{in: "60/m burst 0", wantErr: true},
		{in: "60/m burst", wantErr: true},
		{in: "60/m bust 5", wantErr: true},
		{in: "60/0s", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePolicy(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if err == nil {
				back, err := ParsePolicy(got.String())
				if err != nil || back != got {
					t.Errorf("round trip of %q: %+v, %v", got.String(), back, err)
				}
			}
		})
	}
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"60/m", "600/h burst 100", "100/10s", "60/x", "1/1ms burst 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy(s)
		if err != nil {
			return
		}
		if p.Count < 1 || p.Period <= 0 || p.Burst < 0 {
			t.Fatalf("accepted %q as %+v", s, p)
		}
		back, err := ParsePolicy(p.String())
		if err != nil || back != p {
			t.Fatalf("round trip of %q: %+v, %v", s, back, err)
		}
	})
}
