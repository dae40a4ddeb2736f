package servicebusemu

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
)

// BenchmarkSend measures SendMessage round trips (each waits for the
// emulator's accepted disposition) from one sender.
func BenchmarkSend(b *testing.B) {
	srv := startServer(b, &Options{Config: testConfig()})
	c := newClient(b, srv.ConnectionString())
	ctx := context.Background()
	s := newSender(b, c, testQueue)
	body := make([]byte, 512)
	if err := s.SendMessage(ctx, textMessage("warm up"), nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := s.SendMessage(ctx, textMessage(string(body)), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkReceiveComplete measures PeekLock receive plus complete with 1 and
// 16 concurrent receivers on one connection, as the Functions host runs them.
func BenchmarkReceiveComplete(b *testing.B) {
	for _, receivers := range []int{1, 16} {
		b.Run(fmt.Sprintf("receivers=%d", receivers), func(b *testing.B) {
			srv := startServer(b, &Options{Config: testConfig()})
			c := newClient(b, srv.ConnectionString())
			e, err := srv.broker.lookup(testQueue)
			if err != nil {
				b.Fatal(err)
			}
			msgs := make([]*goamqp.Message, b.N)
			for i := range msgs {
				msgs[i] = &goamqp.Message{Data: [][]byte{make([]byte, 512)}}
			}
			if _, err := srv.broker.send(e, msgs); err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			var done atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range receivers {
				r := newReceiver(b, c, testQueue, nil)
				wg.Go(func() {
					for done.Load() < int64(b.N) {
						got, err := r.ReceiveMessages(ctx, 10, nil)
						if err != nil {
							if ctx.Err() == nil {
								b.Error(err)
							}
							return
						}
						for _, m := range got {
							if err := r.CompleteMessage(ctx, m, nil); err != nil {
								b.Error(err)
								return
							}
							if done.Add(1) == int64(b.N) {
								cancel() // wake receivers still waiting on an empty queue
							}
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
