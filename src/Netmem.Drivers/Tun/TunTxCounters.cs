namespace Netmem.Drivers.Tun;

/// <summary>
/// How TunNic's transmit writes to the TUN descriptor went, beyond the queue's own counters
/// (<see cref="Common.NapiDriver{TQueue}.TxStats"/>): every packet counted here as dropped was
/// also cancelled there, and its sender got a <see cref="Devmem.ZeroCopyCode.Cancelled"/> completion.
/// </summary>
/// <param name="Writes">Packets written whole to the TUN (each one <c>writev</c>).</param>
/// <param name="WriteErrors">Packets dropped because <c>writev</c> failed (EIO on a link that is down, EINVAL, ...); see <paramref name="LastErrno"/>.</param>
/// <param name="ShortWrites">Packets dropped because the kernel took fewer bytes than the packet has.</param>
/// <param name="WouldBlockRetries">Writes that found the descriptor full (EAGAIN) and were tried again after waiting for it to become writable.</param>
/// <param name="WouldBlockDrops">Packets dropped because the descriptor was still full after the last retry.</param>
/// <param name="LastErrno">The errno of the last failed write, 0 when none failed.</param>
public readonly record struct TunTxCounters(long Writes, long WriteErrors, long ShortWrites, long WouldBlockRetries, long WouldBlockDrops, int LastErrno)
{
    /// <summary>Packets the TUN did not take: <see cref="WriteErrors"/> + <see cref="ShortWrites"/> + <see cref="WouldBlockDrops"/>.</summary>
    public long Dropped => WriteErrors + ShortWrites + WouldBlockDrops;
}
