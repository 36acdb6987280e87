"""The receiving side of a connection: in-order data into the receive buffer, out-of-order data into the
reassembly queue (reassembly.py), acknowledgement policy (RFC 5681 §4.2, RFC 1122 delayed ACKs), the FIN.

The receive buffer holds in-order bytes the user has not read yet, and its free space is the window: a paused
reader really pushes back.
"""

from __future__ import annotations

from netstack.tcp import events as ev
from netstack.tcp.counters import Count
from netstack.tcp.reassembly import NO_REASSEMBLY, Reassembly
from netstack.tcp.segment import ACK, FIN
from netstack.tcp.send import SendSide
from netstack.tcp.seq import MASK, seq_diff, seq_gt
from netstack.tcp.state import RECEIVES_DATA, Cause, State
from netstack.tcp.timers import INF


class ReceiveSide(SendSide):
    """Data and FIN in."""

    __slots__ = ()

    def user_receive(self, now: float, max_bytes: int) -> bytes:
        n = min(max_bytes, len(self.rcvbuf))
        if n <= 0:
            return b""
        data = bytes(self.rcvbuf[:n])
        del self.rcvbuf[:n]
        self.host.budgets.rcv_held -= n
        self.readable_pending = False
        if self._state in RECEIVES_DATA:
            # Window update when the opening is worth it: two segments or half the buffer (RFC 1122 4.2.3.3).
            advertised = max(0, seq_diff(self.rcv_adv, self.rcv_nxt))
            if self.free_space() - advertised >= min(2 * self.rcv_mss, self.rcv_buf_size // 2):
                self.send_ack(now)
        return data

    def _receive_data(self, now: float, seq: int, payload: memoryview, fin: bool) -> None:
        """Text (and FIN) of an acceptable segment: a duplicate head is trimmed, what starts beyond RCV.NXT is
        queued, what the buffer cannot hold is cut (and the peer told at once), the rest appended."""
        host = self.host
        part = self._new_part(now, seq, payload, fin)
        if part is None:
            return
        payload, duplicate_head = part
        seq = self.rcv_nxt
        n = len(payload)
        if self.reassembly.segments and self._past_the_end(now, seq, n, fin):
            return
        over_budget = False
        if n > self.free_space():
            payload, over_budget = self._cut_to_space(payload, n)
            n = len(payload)
            fin = False
        was_empty = not self.rcvbuf
        filled_gap = False
        if n:
            n = self._append_in_order(now, payload, n)
        if self.reassembly.segments:
            fin = self._drain_out_of_order(fin)
            filled_gap = True  # the segment changed the reassembly queue: ACK at once (RFC 5681 §4.2)
        if self.rcvbuf and was_empty and not self.reading_paused:
            self.readable_pending = True
            host.emit(ev.Readable(self.id))
        if fin:
            self._fin_received(now)
            return
        if n:
            self._acknowledge(now, at_once=filled_gap or duplicate_head or over_budget)
        elif over_budget:
            self.send_ack(now)

    def _new_part(self, now: float, seq: int, payload: memoryview, fin: bool) -> tuple[memoryview, bool] | None:
        """What of an acceptable segment starts at RCV.NXT, and whether a duplicate head was trimmed off it; None
        when the segment is dealt with here: new data for an application that closed (the connection aborts),
        a segment starting beyond RCV.NXT (queued), or nothing new in it (ACKed)."""
        n = len(payload)
        if self.app_closed and n and seq_gt((seq + n) & MASK, self.rcv_nxt):
            self._data_after_close(now)
            return None
        if seq == self.rcv_nxt:
            return payload, False
        skip = (self.rcv_nxt - seq) & MASK
        if skip >= 0x80000000:
            self._queue_out_of_order(now, seq, payload, fin)
            return None
        if skip >= n + (1 if fin else 0):
            self.host.count(Count.DUPLICATE_SEGMENT)
            self.send_ack(now)
            return None
        return payload[skip:], True

    def _cut_to_space(self, payload: memoryview, n: int) -> tuple[memoryview, bool]:
        """What of `n` in-order bytes the receive space holds, and whether they were within what we advertised
        but over the layer's receive budget: then the caller ACKs at once, so the peer learns where we stopped
        and sends the rest again."""
        over_budget = n <= self.rcv_buf_size - len(self.rcvbuf)
        self.host.count(Count.RCV_BUDGET_EXHAUSTED if over_budget else Count.DATA_BEYOND_WINDOW)
        return payload[:self.free_space()], over_budget

    def _data_after_close(self, now: float) -> None:
        """New data for an application that closed (RFC 9293 §3.6.1, SHLD-2): it can never be read, so the
        peer is told with a RST that it was lost, and the connection ends (Linux's TCPAbortOnData, BSD's
        rcvafterclose). Acknowledging and discarding it instead let the peer believe it delivered, and let it
        hold a closed connection open as long as it kept sending."""
        self.host.count(Count.DATA_AFTER_CLOSE)
        self.send_rst(now)
        self.host.destroy(self, Cause.ABORT, "aborted", notify=False)

    def _acknowledge(self, now: float, *, at_once: bool) -> None:
        """RFC 5681 §4.2: ACK at once when a segment filled a gap or leaves one, repeated data or was cut short;
        else at least every `delayed_ack_segments` segments, and never later than `delayed_ack` (RFC 1122)."""
        cfg = self.host.config
        self.unacked_segments += 1
        if at_once or self.reassembly.segments or self.unacked_segments >= cfg.delayed_ack_segments:
            self.send_ack(now)
        elif self.timers.delack == INF:
            self.timers.delack = now + cfg.delayed_ack

    def _queue_out_of_order(self, now: float, seq: int, payload: memoryview, fin: bool) -> None:
        """Keep a segment that arrived ahead of RCV.NXT, within window and the queue's limits; ACK at once
        (RFC 5681 §4.2: out-of-order data triggers an immediate duplicate ACK)."""
        host = self.host
        cfg = host.config
        offset = (seq - self.rcv_nxt) & MASK
        room = self.rcv_wnd() - offset
        if room <= 0:
            host.count(Count.DATA_BEYOND_WINDOW)
            self.send_ack(now)
            return
        if len(payload) > room:
            payload = payload[:room]
            fin = False
        queue = self.reassembly
        if queue.segments:
            if self._past_the_end(now, seq, len(payload), fin):
                return
            fin = fin and queue.fin_seq() is None  # a FIN already queued at this number is not queued twice
        pieces = queue.gaps(seq, len(payload))  # only what is not held yet is queued: the first copy wins
        if not pieces and not fin:
            host.count(Count.DUPLICATE_SEGMENT)
            self.send_ack(now)
            return
        entries = max(1, len(pieces))
        new_bytes = sum(end - start for start, end in pieces)
        if len(queue) + entries > cfg.ooo_max_segments or queue.bytes + new_bytes > cfg.ooo_max_bytes:
            host.count(Count.OOO_QUEUE_FULL)
            self.send_ack(now)
            return
        if self.host.budgets.ooo_held + new_bytes + entries * cfg.ooo_entry_overhead > cfg.ooo_budget:
            # Every connection's queues together are full: drop rather than queue. The sender retransmits
            # after the hole is filled, so this costs throughput under loss, never correctness.
            host.count(Count.OOO_BUDGET_EXHAUSTED)
            self.send_ack(now)
            return
        if queue is NO_REASSEMBLY:
            queue = self.reassembly = Reassembly()
        charge = self._ooo_charge()
        queue.add_pieces(seq, bytes(payload), pieces, fin, self.rcv_nxt)
        self.host.budgets.ooo_held += self._ooo_charge() - charge
        host.count(Count.OUT_OF_ORDER)
        self.send_ack(now)

    def _past_the_end(self, now: float, seq: int, n: int, fin: bool) -> bool:
        """Whether the `n` bytes at `seq` (and FIN after them) contradict where the queue says the stream ends;
        such a segment is counted, answered with an ACK and dropped. A FIN ends the stream (RFC 9293
        §3.10.7.4), so text beyond a queued FIN could only reach the application as bytes the peer never
        counted, and a FIN before queued text, or at another number than a queued FIN, would end the stream in
        two places; the first word stands, as it does for overlapping text (`Reassembly.add`)."""
        queue = self.reassembly
        end = (seq + n) & MASK
        fin_seq = queue.fin_seq()
        if fin:
            queued_end = queue.end()
            if (fin_seq is not None and fin_seq != end) or (queued_end is not None and seq_gt(queued_end, end)):
                self.host.count(Count.FIN_CONFLICT)
                self.send_ack(now)
                return True
        elif fin_seq is not None and seq_gt(end, fin_seq):
            self.host.count(Count.DATA_BEYOND_FIN)
            self.send_ack(now)
            return True
        return False

    def _append_in_order(self, now: float, payload: memoryview, n: int) -> int:
        """Append the `n` bytes at RCV.NXT (or, when queued text overlaps them, those before it); how many."""
        if self.reassembly.segments:
            n = self._yield_to_queued(payload, n)
            payload = payload[:n]
        self._rcv_append(payload)
        self.rcv_nxt = (self.rcv_nxt + n) & MASK
        self.timers.last_activity = now
        return n

    def _yield_to_queued(self, payload: memoryview, n: int) -> int:
        """In-order text overlapping text already queued: the queued copy came first, so it wins (the rule of
        `Reassembly.add`). Returns how much of `payload` to append now, up to the first queued byte; the
        later gaps between queued entries go into the queue, and the drain that follows delivers all."""
        queue = self.reassembly
        pieces = queue.gaps(self.rcv_nxt, n)
        head = pieces[0][1]  # nothing queued starts at RCV.NXT, so the first piece does
        if len(pieces) > 1:
            charge = self._ooo_charge()
            queue.add_pieces(self.rcv_nxt, bytes(payload[:n]), pieces[1:], False, self.rcv_nxt)
            self.host.budgets.ooo_held += self._ooo_charge() - charge
        return head

    def _drain_out_of_order(self, fin: bool) -> bool:
        """Move queued segments that now continue the stream into the receive buffer; whether a FIN follows."""
        charge = self._ooo_charge()
        self.rcv_nxt, _changed, reached_fin = self.reassembly.drain(self.rcv_nxt, self._take_in_order)
        self.host.budgets.ooo_held += self._ooo_charge() - charge
        return fin or reached_fin

    def _take_in_order(self, data: bytes) -> int:
        chunk = data[: self.free_space()]
        self._rcv_append(chunk)
        return len(chunk)

    def _fin_received(self, now: float) -> None:
        self.rcv_nxt = (self.rcv_nxt + 1) & MASK
        if self.reassembly.segments:
            self._drop_reassembly()  # whatever lies beyond the FIN can never be delivered
        if self._state == State.FIN_WAIT_1 and not self.send_buffer.fin_acked and not self.send_buffer.data and \
                self.snd_nxt == self.snd_max:
            if self.snd_max != self.snd_una:
                # Simultaneous close: our FIN (all that is outstanding) is unacknowledged; repeat it with the
                # ACK of theirs.
                self._emit(now, (self.snd_max - 1) & MASK, FIN | ACK)
            else:
                # Our FIN is queued but was never sent: the user closed during a simultaneous open's
                # SYN-RECEIVED and this segment completed the handshake. SND.MAX - 1 would be our ISS, the
                # SYN's number; the FIN goes out at SND.NXT instead, carrying the ACK of theirs.
                self.output(now)
        else:
            self.send_ack(now)
        self.host.emit(ev.PeerClosed(self.id))
        state = self._state
        if state == State.ESTABLISHED:
            self._enter(State.CLOSE_WAIT, Cause.RCV_FIN)
        elif state == State.FIN_WAIT_1:
            # Our FIN is unacknowledged here: an ACK of it has already taken us to FIN-WAIT-2 (`_ack_closes`
            # runs before the text), so figure 5's note 2 edge is taken as FIN-WAIT-2, then TIME-WAIT.
            self._enter(State.CLOSING, Cause.RCV_FIN)
        else:  # FIN-WAIT-2 (text and FIN are processed only in RECEIVES_DATA)
            self._enter_time_wait(now, Cause.RCV_FIN)

    def _enter_time_wait(self, now: float, cause: Cause) -> None:
        self._enter(State.TIME_WAIT, cause)
        self.timers.rtx = INF
        self.timers.persist = INF
        self.timers.delack = INF
        self.send_buffer.discard()
        self.timers.phase = now + 2 * self.host.config.msl
        self.host.entered_time_wait(self)
