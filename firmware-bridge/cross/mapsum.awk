# Sums a GNU ld map's input sections (after "Linker script and memory map": the sections kept by
# --gc-sections) per part and kind. Parts: lib (libcoulomb.a), secp (libsecp256k1.a), runtime
# (mini_libc.o, libgcc), image (size_main.o; qemu_random.o, the platform's randomness hook). Kinds:
# text (.text, .literal), rodata (.rodata, .srodata), data (.data, .sdata), bss (.bss, .sbss,
# COMMON). Prints "part_kind bytes" lines.
function kind(name) {
  if (name ~ /^\.(text|literal|iram)/) return "text"
  if (name ~ /^\.(s?rodata)/) return "rodata"
  if (name ~ /^\.(s?data)/) return "data"
  if (name ~ /^\.(s?bss)/ || name == "COMMON") return "bss"
  return ""
}
function part(file) {
  if (file ~ /libcoulomb\.a\(/) return "lib"
  if (file ~ /libsecp256k1\.a\(/) return "secp"
  if (file ~ /(size_main|qemu_random)\.o$/) return "image"
  return "runtime"
}
function hex(s,   i, n) {
  n = 0
  s = tolower(substr(s, 3))
  for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
  return n
}
function add(name, size, file,   k) {
  k = kind(name)
  if (k == "" || file == "") return
  sum[part(file) "_" k] += hex(size)
}
/^Linker script and memory map/ { inmap = 1; next }
!inmap { next }
# An input section on one line: " .text.x  0xADDR  0xSIZE file"
/^ [.A-Z]/ && NF >= 4 && $2 ~ /^0x/ && $3 ~ /^0x/ { add($1, $3, $4); pending = ""; next }
# ... or its name alone, the numbers on the next line.
/^ [.A-Z]/ && NF == 1 { pending = $1; next }
pending != "" && /^ +0x/ && NF >= 3 && $2 ~ /^0x/ { add(pending, $2, $3); pending = ""; next }
{ pending = "" }
END {
  split("lib secp runtime image", parts, " ")
  split("text rodata data bss", kinds, " ")
  for (p = 1; p <= 4; p++)
    for (k = 1; k <= 4; k++) print parts[p] "_" kinds[k], sum[parts[p] "_" kinds[k]] + 0
}
