namespace Netmem.Drivers.Xdp;

/// <summary>
/// What <see cref="XdpNic"/>'s devmem transmit refused or did beside sending; the sends themselves
/// are in <see cref="Common.NapiDriver{TQueue}.TxStats"/>. Every drop here is a cancelled send.
/// </summary>
/// <param name="NotUmemDrops">Sends whose TX binding's region is not the UMEM of a running bound queue (not bound for rx here, or its queue was restarting).</param>
/// <param name="OversizeDrops">Sends larger than a chunk on a socket without multi-buffer (headers and payload must fit one frame).</param>
/// <param name="NoRoomDrops">Sends that found no free header slot or tx-ring room after kicking and reaping.</param>
/// <param name="StrayCompletions">Completion-ring entries that were not the address the in-flight FIFO expected (never expected).</param>
/// <param name="Kicks">Wakeups sent to the kernel (<c>sendto</c>).</param>
/// <param name="KickErrors">Wakeups that failed with an errno other than EAGAIN or EBUSY.</param>
/// <param name="DrainCancels">Sends still in flight when their queue stopped and cancelled then.</param>
/// <param name="CopiedBytes">Payload bytes the driver copied into a reserved frame because the socket has no multi-buffer (sends completed as copied); 0 when every payload went out from its chunks.</param>
/// <param name="LastKickErrno">The errno of the last failed wakeup, 0 when none failed.</param>
public readonly record struct XdpTxCounters(
    long NotUmemDrops,
    long OversizeDrops,
    long NoRoomDrops,
    long StrayCompletions,
    long Kicks,
    long KickErrors,
    long DrainCancels,
    long CopiedBytes,
    int LastKickErrno);
