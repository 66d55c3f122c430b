;; The chunker's inner loop (see chunker.ts for the definition it implements).
;; Memory layout (imported as env.memory):
;;   0     .. 1024  gear[256]      i32 little-endian
;;   1024  .. 2048  gear2[256]     gear[b] << 1
;;   2048  ..       data           the stream window; `i` and `end` index into it
;; scan(i, end, h, mask) steps h = 2h + gear[b] over data[i..end) two bytes at a time
;; and returns the index after the first byte where h & mask == 0, or -1 (then the
;; running hash is left in the exported global `h`). mask must have bit 31 clear.
(module
  (import "env" "memory" (memory 1))
  (global $h (export "h") (mut i32) (i32.const 0))
  (func (export "scan") (param $i i32) (param $end i32) (param $h i32) (param $mask i32) (result i32)
    (local $mask2 i32) (local $last i32)
    (local.set $mask2 (i32.shl (local.get $mask) (i32.const 1)))
    (local.set $last (i32.sub (local.get $end) (i32.const 1)))
    (block $pairs_done
      (br_if $pairs_done (i32.ge_s (local.get $i) (local.get $last)))
      (loop $pair
        ;; h = 2 * (2h + gear[b_i]) using gear2: tested against mask << 1
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 2))
          (i32.load offset=1024 (i32.shl (i32.load8_u offset=2048 (local.get $i)) (i32.const 2)))))
        (if (i32.eqz (i32.and (local.get $h) (local.get $mask2)))
          (then (return (i32.add (local.get $i) (i32.const 1)))))
        (local.set $h (i32.add (local.get $h)
          (i32.load (i32.shl (i32.load8_u offset=2049 (local.get $i)) (i32.const 2)))))
        (if (i32.eqz (i32.and (local.get $h) (local.get $mask)))
          (then (return (i32.add (local.get $i) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (br_if $pair (i32.lt_s (local.get $i) (local.get $last)))))
    (if (i32.lt_s (local.get $i) (local.get $end))
      (then
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1))
          (i32.load (i32.shl (i32.load8_u offset=2048 (local.get $i)) (i32.const 2)))))
        (if (i32.eqz (i32.and (local.get $h) (local.get $mask)))
          (then (return (i32.add (local.get $i) (i32.const 1)))))))
    (global.set $h (local.get $h))
    (i32.const -1)))
