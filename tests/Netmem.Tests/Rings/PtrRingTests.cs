using Netmem.Rings;
using Xunit;

namespace Netmem.Tests.Rings;

public sealed class PtrRingTests
{
    [Theory]
    [InlineData(1, 2)]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(1000, 1024)]
    [InlineData(1024, 1024)]
    [InlineData(1025, 2048)]
    public void Capacity_is_rounded_up_to_a_power_of_two(int size, int capacity)
    {
        using var ring = new PtrRing(size);
        Assert.Equal(capacity, ring.Capacity);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData((1 << 24) + 1)]
    public void Size_out_of_range_throws(int size)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new PtrRing(size));
    }

    [Fact]
    public void Single_thread_order_is_first_in_first_out_across_laps()
    {
        using var ring = new PtrRing(8);
        nuint next = 1, expect = 1;
        for (int lap = 0; lap < 5; lap++)
        {
            for (int i = 0; i < 6; i++)
            {
                Assert.True(ring.TryEnqueue(next++));
            }

            for (int i = 0; i < 6; i++)
            {
                Assert.True(ring.TryDequeue(out nuint v));
                Assert.Equal(expect++, v);
            }
        }

        Assert.True(ring.IsEmpty);
    }

    [Fact]
    public void Full_ring_refuses_one_more_and_empty_ring_yields_nothing()
    {
        using var ring = new PtrRing(4);
        Assert.True(ring.IsEmpty);
        Assert.False(ring.TryDequeue(out nuint none));
        Assert.Equal(0u, (uint)none);

        for (nuint i = 10; i < 14; i++)
        {
            Assert.True(ring.TryEnqueue(i));
        }

        Assert.Equal(4, ring.Count);
        Assert.False(ring.TryEnqueue(99));
        Assert.Equal(4, ring.Count);

        Assert.True(ring.TryDequeue(out nuint v));
        Assert.Equal(10u, (uint)v);
        Assert.True(ring.TryEnqueue(99)); // one slot freed, one fits
        Assert.False(ring.TryEnqueue(100));
    }

    [Fact]
    public void EnqueueBurst_adds_what_fits_in_order_and_returns_the_count()
    {
        using var ring = new PtrRing(8);
        Assert.Equal(3, ring.EnqueueBurst([1, 2, 3]));
        Assert.Equal(5, ring.EnqueueBurst([4, 5, 6, 7, 8, 9, 10]));
        Assert.Equal(8, ring.Count);
        Assert.Equal(0, ring.EnqueueBurst([11]));
        Assert.Equal(0, ring.EnqueueBurst([]));

        var got = new nuint[16];
        Assert.Equal(8, ring.DequeueBurst(got));
        Assert.Equal(new nuint[] { 1, 2, 3, 4, 5, 6, 7, 8 }, got[..8]);
    }

    [Fact]
    public void EnqueueBulk_adds_all_or_nothing()
    {
        using var ring = new PtrRing(8);
        Assert.True(ring.EnqueueBulk([1, 2, 3, 4, 5]));
        Assert.False(ring.EnqueueBulk([6, 7, 8, 9])); // 4 do not fit in the 3 free slots
        Assert.Equal(5, ring.Count);
        Assert.True(ring.EnqueueBulk([6, 7, 8]));
        Assert.Equal(8, ring.Count);
        Assert.False(ring.EnqueueBulk(new nuint[9])); // larger than the ring
        Assert.True(ring.EnqueueBulk([]));

        var got = new nuint[8];
        Assert.Equal(8, ring.DequeueBurst(got));
        Assert.Equal(new nuint[] { 1, 2, 3, 4, 5, 6, 7, 8 }, got);
    }

    [Fact]
    public void DequeueBurst_takes_up_to_the_span_length()
    {
        using var ring = new PtrRing(16);
        ring.EnqueueBurst([1, 2, 3, 4, 5]);
        var got = new nuint[3];
        Assert.Equal(3, ring.DequeueBurst(got));
        Assert.Equal(new nuint[] { 1, 2, 3 }, got);
        Assert.Equal(2, ring.DequeueBurst(got));
        Assert.Equal(new nuint[] { 4, 5 }, got[..2]);
        Assert.Equal(0, ring.DequeueBurst(got));
        Assert.Equal(0, ring.DequeueBurst([]));
    }

    [Fact]
    public void DequeueBulk_takes_exactly_the_span_length_or_nothing()
    {
        using var ring = new PtrRing(16);
        ring.EnqueueBurst([1, 2, 3]);
        var four = new nuint[4];
        Assert.False(ring.DequeueBulk(four));
        Assert.Equal(3, ring.Count);
        var three = new nuint[3];
        Assert.True(ring.DequeueBulk(three));
        Assert.Equal(new nuint[] { 1, 2, 3 }, three);
    }

    [Fact]
    public void Concurrent_producers_and_consumers_deliver_every_value_exactly_once()
    {
        const int Producers = 2;
        const int Consumers = 2;
        const int PerProducer = 200_000;
        const int Total = Producers * PerProducer;
        using var ring = new PtrRing(64); // small, so producers and consumers lap often

        int[] seen = new int[Total + 1];
        long sum = 0;
        long count = 0;
        int duplicates = 0;
        int outOfRange = 0;
        int producersDone = 0;

        var threads = new List<Thread>();
        for (int p = 0; p < Producers; p++)
        {
            int id = p;
            threads.Add(new Thread(() =>
            {
                // Values 1..Total, split between producers; bursts of 1..8 mixed with single enqueues.
                Span<nuint> burst = stackalloc nuint[8];
                int next = (id * PerProducer) + 1, end = (id + 1) * PerProducer;
                var spin = default(SpinWait);
                int k = 0;
                while (next <= end)
                {
                    if ((k++ & 1) == 0)
                    {
                        if (ring.TryEnqueue((nuint)next))
                        {
                            next++;
                            continue;
                        }
                    }
                    else
                    {
                        int n = Math.Min(1 + (k % 8), end - next + 1);
                        for (int i = 0; i < n; i++)
                        {
                            burst[i] = (nuint)(next + i);
                        }

                        int done = (k & 2) == 0 ? ring.EnqueueBurst(burst[..n]) : (ring.EnqueueBulk(burst[..n]) ? n : 0);
                        next += done;
                        if (done != 0)
                        {
                            continue;
                        }
                    }

                    spin.SpinOnce(sleep1Threshold: -1);
                }

                Interlocked.Increment(ref producersDone);
            }));
        }

        for (int c = 0; c < Consumers; c++)
        {
            threads.Add(new Thread(() =>
            {
                Span<nuint> batch = stackalloc nuint[8];
                var spin = default(SpinWait);
                int k = 0;
                while (true)
                {
                    int n;
                    if ((k++ & 1) == 0)
                    {
                        n = ring.TryDequeue(out batch[0]) ? 1 : 0;
                    }
                    else
                    {
                        n = ring.DequeueBurst(batch[..(1 + (k % 8))]);
                    }

                    if (n == 0)
                    {
                        if (Volatile.Read(ref producersDone) == Producers && ring.IsEmpty)
                        {
                            return;
                        }

                        spin.SpinOnce(sleep1Threshold: -1);
                        continue;
                    }

                    for (int i = 0; i < n; i++)
                    {
                        nuint v = batch[i];
                        if (v == 0 || v > Total)
                        {
                            Interlocked.Increment(ref outOfRange);
                            continue;
                        }

                        if (Interlocked.Exchange(ref seen[(int)v], 1) != 0)
                        {
                            Interlocked.Increment(ref duplicates);
                        }

                        Interlocked.Add(ref sum, (long)v);
                        Interlocked.Increment(ref count);
                    }
                }
            }));
        }

        threads.ForEach(t => t.Start());
        foreach (Thread t in threads)
        {
            Assert.True(t.Join(TimeSpan.FromSeconds(60)), "ring stress thread did not finish");
        }

        Assert.Equal(0, outOfRange);
        Assert.Equal(0, duplicates);
        Assert.Equal((long)Total, count);
        Assert.Equal((long)Total * (Total + 1) / 2, sum);
        Assert.Equal(Total, seen.Skip(1).Count(f => f == 1));
        Assert.True(ring.IsEmpty);
    }

    [Fact]
    public void Consumer_takes_what_was_published_before_a_stalled_producer_and_returns_without_waiting()
    {
        using var ring = new PtrRing(8);
        Assert.True(ring.TryEnqueue(1));
        Assert.True(ring.TryEnqueue(2));

        // A producer reserves position 2 and stalls before publishing it (preempted mid-publish).
        long stalled = ring.ReserveForEnqueue(1, exact: true, out int reserved);
        Assert.Equal(2L, stalled);
        Assert.Equal(1, reserved);

        // Other producers carry on behind it; the stalled slot is counted but not published.
        Assert.Equal(2, ring.EnqueueBurst([4, 5]));
        Assert.Equal(5, ring.Count);

        // The consumer, on its own thread so that a wait would show as a failure, not a hang,
        // takes the two values published ahead of the gap and then finds nothing more, twice.
        nuint[] burst = new nuint[8];
        int got = 0;
        bool single = true, bulk = true;
        RunBounded(() =>
        {
            got = ring.DequeueBurst(burst);
            single = ring.TryDequeue(out _);
            bulk = ring.DequeueBulk(new nuint[1]);
        });

        Assert.Equal(2, got);
        Assert.Equal(new nuint[] { 1, 2 }, burst[..2]);
        Assert.False(single);
        Assert.False(bulk);
        Assert.Equal(3, ring.Count);

        // Once the stalled producer publishes, the values behind it come out in order.
        ring.Publish(stalled, 3);
        Assert.Equal(3, ring.DequeueBurst(burst));
        Assert.Equal(new nuint[] { 3, 4, 5 }, burst[..3]);
        Assert.True(ring.IsEmpty);
    }

    [Fact]
    public void Producers_keep_filling_the_free_slots_while_one_producer_is_stalled()
    {
        using var ring = new PtrRing(4);
        long stalled = ring.ReserveForEnqueue(1, exact: true, out _);

        // Three slots are still free: other producers take them and then see the ring full.
        bool[] results = new bool[4];
        RunBounded(() =>
        {
            for (int i = 0; i < results.Length; i++)
            {
                results[i] = ring.TryEnqueue((nuint)(10 + i));
            }
        });

        Assert.Equal(new[] { true, true, true, false }, results);
        Assert.False(ring.TryDequeue(out _)); // the head is the stalled slot
        ring.Publish(stalled, 9);
        nuint[] all = new nuint[4];
        Assert.True(ring.DequeueBulk(all));
        Assert.Equal(new nuint[] { 9, 10, 11, 12 }, all);
    }

    /// <summary>Runs <paramref name="action"/> on another thread; fails (rather than hangs) if it does not finish.</summary>
    private static void RunBounded(Action action)
    {
        Task t = Task.Factory.StartNew(action, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Assert.True(t.Wait(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken), "the ring operation did not return: it waited for the stalled thread");
    }
}
