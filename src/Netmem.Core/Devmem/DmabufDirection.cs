namespace Netmem.Devmem;

/// <summary>Which way a device moves data through a <see cref="DmabufBinding"/> (the kernel's DMA direction of the mapping).</summary>
public enum DmabufDirection
{
    /// <summary>The device writes received payload into the region (<c>bind-rx</c>, <c>DMA_FROM_DEVICE</c>).</summary>
    Rx,

    /// <summary>The device reads payload to transmit from the region (<c>bind-tx</c>, <c>DMA_TO_DEVICE</c>).</summary>
    Tx,
}
