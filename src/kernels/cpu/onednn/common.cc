#include "kernels/cpu/onednn/common.h"

#include <omp.h>

#include <cstring>

namespace gpuhive::cpu::onednn {

const dnnl::engine& Engine() {
  static const dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

dnnl::stream& ThreadStream() {
  thread_local dnnl::stream stream(Engine());
  return stream;
}

void SetThreads(int num_threads) {
  if (num_threads < 1) num_threads = 1;
  if (omp_get_max_threads() != num_threads) omp_set_num_threads(num_threads);
}

ThreadScope::ThreadScope(int num_threads) : previous_(omp_get_max_threads()) { SetThreads(num_threads); }

Dims ToDims(const Shape& shape) { return Dims(shape.begin(), shape.end()); }

Tag PlainTag(size_t rank) {
  switch (rank) {
    case 0:
    case 1: return Tag::a;
    case 2: return Tag::ab;
    case 3: return Tag::abc;
    case 4: return Tag::abcd;
    case 5: return Tag::abcde;
    case 6: return Tag::abcdef;
    default: return Tag::undef;
  }
}

Tag BlockedTag(size_t rank, int block) {
  if (block == 16) {
    switch (rank) {
      case 3: return Tag::aBc16b;
      case 4: return Tag::aBcd16b;
      case 5: return Tag::aBcde16b;
      default: return Tag::undef;
    }
  }
  if (block == 8) {
    switch (rank) {
      case 3: return Tag::aBc8b;
      case 4: return Tag::aBcd8b;
      case 5: return Tag::aBcde8b;
      default: return Tag::undef;
    }
  }
  return Tag::undef;
}

Tag ChannelsLastTag(size_t rank) {
  switch (rank) {
    case 3: return Tag::nwc;
    case 4: return Tag::nhwc;
    case 5: return Tag::ndhwc;
    default: return Tag::undef;
  }
}

StatusOr<memory::desc> MdFor(const Shape& shape, Layout layout, memory::data_type type) {
  Dims dims = ToDims(shape);
  if (dims.empty()) dims = {1};
  Tag tag = layout == Layout::kPlain          ? PlainTag(dims.size())
            : layout == Layout::kBlocked16    ? BlockedTag(dims.size(), 16)
            : layout == Layout::kChannelsLast ? ChannelsLastTag(dims.size())
                                              : BlockedTag(dims.size(), 8);
  if (tag == Tag::undef) {
    return Unimplemented("no oneDNN format for rank {} in layout {}", dims.size(),
                         static_cast<int>(layout));
  }
  for (int64_t d : dims) {
    if (d <= 0) return Unimplemented("empty tensor {} is not supported by oneDNN kernels", ShapeToString(shape));
  }
  return memory::desc(dims, type, tag);
}

bool LayoutOf(const memory::desc& md, Layout* layout) {
  Dims dims = md.dims();
  auto same = [&](Tag tag) {
    return tag != Tag::undef && md == memory::desc(dims, memory::data_type::f32, tag);
  };
  if (same(PlainTag(dims.size()))) {
    *layout = Layout::kPlain;
    return true;
  }
  if (same(BlockedTag(dims.size(), 16))) {
    *layout = Layout::kBlocked16;
    return true;
  }
  if (same(BlockedTag(dims.size(), 8))) {
    *layout = Layout::kBlocked8;
    return true;
  }
  return false;
}

namespace {

// Whether oneDNN's effective ISA (ONEDNN_MAX_CPU_ISA included) has every feature of `want`.
bool EffectiveIsaHas(dnnl::cpu_isa want) {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  return (isa & static_cast<unsigned>(want)) == static_cast<unsigned>(want);
}

}  // namespace

int PreferredBlock() {
  static const int block = EffectiveIsaHas(dnnl::cpu_isa::avx512_core) ? 16 : 8;
  return block;
}

bool HasInt8DotProduct() {
  static const bool vnni =
      EffectiveIsaHas(dnnl::cpu_isa::avx512_core_vnni) || EffectiveIsaHas(dnnl::cpu_isa::avx2_vnni);
  return vnni;
}

bool HasBf16DotProduct() {
  static const bool bf16 = EffectiveIsaHas(dnnl::cpu_isa::avx512_core_bf16);
  return bf16;
}

bool HasWinogradConv() {
  static const bool wino = EffectiveIsaHas(dnnl::cpu_isa::avx512_core);
  return wino;
}

Layout PreferredBlockedLayout() { return PreferredBlock() == 16 ? Layout::kBlocked16 : Layout::kBlocked8; }

dnnl::primitive_attr ScratchAttr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

bool IsReferenceImpl(const dnnl::primitive_desc_base& pd) {
  const char* name = pd.impl_info_str();
  return name != nullptr && std::strncmp(name, "ref", 3) == 0;
}

StatusOr<Buffer> ReorderToPersistent(const PrepareContext& ctx, const memory::desc& src_md,
                                     const void* src, const memory::desc& dst_md) {
  ASSIGN_OR_RETURN(Buffer buf, Buffer::Allocate(ctx.persistent_resource(), dst_md.get_size(),
                                                ctx.persistent_tag()));
  RETURN_IF_ERROR(Guard("weights reorder", [&]() -> Status {
    if (src_md == dst_md) {
      std::memcpy(buf.data(), src, dst_md.get_size());
      return Status::OK();
    }
    memory s(src_md, Engine(), const_cast<void*>(src));
    memory d(dst_md, Engine(), buf.data());
    dnnl::reorder(s, d).execute(ThreadStream(), s, d);
    ThreadStream().wait();
    return Status::OK();
  }));
  return buf;
}

PackedWeights& PackedWeights::Get() {
  static PackedWeights* cache = new PackedWeights();  // never destroyed: kernels may outlive statics
  return *cache;
}

std::vector<std::shared_ptr<const PackedWeights::Packed>> PackedWeights::Find(const ir::Value* value,
                                                                              const memory::desc& src_md,
                                                                              float scale) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<const Packed>> out;
  auto it = entries_.find(value);
  if (it == entries_.end()) return out;
  for (auto e = it->second.rbegin(); e != it->second.rend(); ++e) {
    if (e->src_md != src_md || e->scale != scale) continue;
    if (auto p = e->packed.lock()) out.push_back(std::move(p));
  }
  return out;
}

std::shared_ptr<const PackedWeights::Packed> PackedWeights::FindAny(const ir::Value* value, const Dims& dims) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(value);
  if (it == entries_.end()) return nullptr;
  for (auto e = it->second.rbegin(); e != it->second.rend(); ++e) {
    if (e->scale != 1.f) continue;
    auto p = e->packed.lock();
    // A Winograd-domain copy cannot be reordered back (oneDNN has no such reorder).
    if (p && p->md.dims() == dims && p->md.data.format_kind != dnnl_format_kind_wino) return p;
  }
  return nullptr;
}

void PackedWeights::Publish(const ir::Value* value, const memory::desc& src_md,
                            const std::shared_ptr<const Packed>& packed, float scale) {
  std::lock_guard<std::mutex> lock(mu_);
  if (++inserts_ % 256 == 0) Sweep();
  auto& list = entries_[value];
  std::erase_if(list, [](const Entry& e) { return e.packed.expired(); });
  list.push_back(Entry{src_md, scale, packed});
}

void PackedWeights::Sweep() {
  for (auto it = entries_.begin(); it != entries_.end();) {
    std::erase_if(it->second, [](const Entry& e) { return e.packed.expired(); });
    it = it->second.empty() ? entries_.erase(it) : std::next(it);
  }
}

StatusOr<const void*> PlainConstant(const ir::Value* value, const Tensor& constant, const memory::desc& user_md,
                                    Buffer* scratch) {
  if (constant.data() != nullptr) return static_cast<const void*>(constant.data());
  std::shared_ptr<const PackedWeights::Packed> packed =
      value != nullptr ? PackedWeights::Get().FindAny(value, user_md.dims()) : nullptr;
  if (packed == nullptr) {
    return Internal("constant '{}' has neither plain storage nor a packed copy", value ? value->name : "?");
  }
  ASSIGN_OR_RETURN(*scratch, Buffer::Allocate(DefaultHostResource(), user_md.get_size()));
  RETURN_IF_ERROR(Guard("weights unpack", [&]() -> Status {
    memory s(packed->md, Engine(), const_cast<void*>(packed->buffer.data()));
    memory d(user_md, Engine(), scratch->data());
    dnnl::reorder(s, d).execute(ThreadStream(), s, d);
    ThreadStream().wait();
    return Status::OK();
  }));
  return static_cast<const void*>(scratch->data());
}

StatusOr<std::shared_ptr<const PackedWeights::Packed>> SharedPack(const PrepareContext& ctx, const ir::Value* value,
                                                                  const Tensor& constant,
                                                                  const memory::desc& user_md,
                                                                  const memory::desc& packed_md) {
  if (value != nullptr) {
    for (auto& p : PackedWeights::Get().Find(value, user_md)) {
      if (p->md == packed_md) return p;
    }
  }
  Buffer scratch;
  ASSIGN_OR_RETURN(const void* plain, PlainConstant(value, constant, user_md, &scratch));
  auto packed = std::make_shared<PackedWeights::Packed>();
  packed->md = packed_md;
  ASSIGN_OR_RETURN(packed->buffer, ReorderToPersistent(ctx, user_md, plain, packed_md));
  if (value != nullptr) PackedWeights::Get().Publish(value, user_md, packed);
  return std::shared_ptr<const PackedWeights::Packed>(std::move(packed));
}

std::vector<int64_t> IntsOr(const ir::Node& node, const std::string& name, std::vector<int64_t> def) {
  auto v = node.GetInts(name, def);
  return v.ok() ? *v : def;
}

Dims BroadcastDims(const Shape& shape, size_t rank) {
  Dims d(rank, 1);
  size_t off = rank >= shape.size() ? rank - shape.size() : 0;
  for (size_t i = 0; i < shape.size() && i < rank; ++i) d[off + i] = shape[i + (shape.size() - std::min(shape.size(), rank))];
  return d;
}

std::vector<EltwiseSpec> EltwiseSpecs(const PostOp& op) {
  using A = dnnl::algorithm;
  switch (op.kind) {
    case PostOp::Kind::kRelu: return {{A::eltwise_relu, 0.f, 0.f}};
    case PostOp::Kind::kLeakyRelu: return {{A::eltwise_relu, op.alpha, 0.f}};
    case PostOp::Kind::kClip: return {{A::eltwise_clip, op.alpha, op.beta}};
    case PostOp::Kind::kSigmoid: return {{A::eltwise_logistic, 0.f, 0.f}};
    case PostOp::Kind::kTanh: return {{A::eltwise_tanh, 0.f, 0.f}};
    case PostOp::Kind::kHardSwish: return {{A::eltwise_hardswish, 0.f, 0.f}};
    case PostOp::Kind::kHardSigmoid:
      return {{A::eltwise_linear, op.alpha, op.beta}, {A::eltwise_clip, 0.f, 1.f}};
    case PostOp::Kind::kGeluErf: return {{A::eltwise_gelu_erf, 0.f, 0.f}};
    case PostOp::Kind::kGeluTanh: return {{A::eltwise_gelu_tanh, 0.f, 0.f}};
    case PostOp::Kind::kSwish: return {{A::eltwise_swish, 1.f, 0.f}};
    case PostOp::Kind::kElu: return {{A::eltwise_elu, op.alpha, 0.f}};
    case PostOp::Kind::kExp: return {{A::eltwise_exp, 0.f, 0.f}};
    case PostOp::Kind::kLog: return {{A::eltwise_log, 0.f, 0.f}};
    case PostOp::Kind::kSqrt: return {{A::eltwise_sqrt, 0.f, 0.f}};
    case PostOp::Kind::kAbs: return {{A::eltwise_abs, 0.f, 0.f}};
    case PostOp::Kind::kNeg: return {{A::eltwise_linear, -1.f, 0.f}};
    case PostOp::Kind::kSquare: return {{A::eltwise_square, 0.f, 0.f}};
    case PostOp::Kind::kLinear: return {{A::eltwise_linear, op.alpha, op.beta}};
    default: return {};
  }
}

void AppendEltwise(dnnl::post_ops& po, const PostOp& op) {
  for (const auto& s : EltwiseSpecs(op)) po.append_eltwise(1.f, s.alg, s.alpha, s.beta);
}

dnnl::algorithm BinaryAlg(PostOp::Kind kind) {
  using A = dnnl::algorithm;
  switch (kind) {
    case PostOp::Kind::kMul: return A::binary_mul;
    case PostOp::Kind::kSub: return A::binary_sub;
    case PostOp::Kind::kDiv: return A::binary_div;
    case PostOp::Kind::kMax: return A::binary_max;
    case PostOp::Kind::kMin: return A::binary_min;
    default: return A::binary_add;
  }
}

Status PostOpChain::Init(const PrepareContext& ctx, size_t first_extra, const Shape& dst_shape,
                         size_t skip, bool fuse_sum) {
  const ir::Node& node = ctx.node();
  ops_.clear();
  steps_.clear();
  dst_shape_ = dst_shape;
  if (node.has_attr("post_ops")) {
    ASSIGN_OR_RETURN(auto texts, node.GetStrings("post_ops"));
    ASSIGN_OR_RETURN(ops_, ParsePostOps(texts));
  }
  if (skip > ops_.size()) skip = ops_.size();
  ops_.erase(ops_.begin(), ops_.begin() + static_cast<std::ptrdiff_t>(skip));
  size_t next = first_extra;
  bool sum_taken = false;
  for (const PostOp& op : ops_) {
    Step s;
    s.op = op;
    if (op.is_binary()) {
      if (next >= ctx.num_inputs() || !ctx.has_input(next)) {
        return InvalidArgument("{}: post-op '{}' needs extra input {}", node.Describe(),
                               FormatPostOp(op), next);
      }
      if (ctx.input_dtype(next) != DataType::kFloat32) {
        return Unimplemented("{}: post-op input {} must be float32", node.Describe(), next);
      }
      s.input = static_cast<int>(next);
      s.extra_shape = ctx.input_shape(next);
      s.extra_layout = ctx.input_layout(next);
      if (op.kind == PostOp::Kind::kSum) {
        if (s.extra_shape != dst_shape) {
          return InvalidArgument("{}: 'sum' input {} has shape {}, output has {}", node.Describe(),
                                 next, ShapeToString(s.extra_shape), ShapeToString(dst_shape));
        }
        s.fused_sum = fuse_sum && !sum_taken;
        sum_taken = true;
      } else {
        if (s.extra_layout != Layout::kPlain) {
          return InvalidArgument("{}: broadcast post-op input {} must be plain", node.Describe(), next);
        }
        if (s.extra_shape.size() > dst_shape.size()) {
          return InvalidArgument("{}: post-op input {} {} has higher rank than the output {}",
                                 node.Describe(), next, ShapeToString(s.extra_shape),
                                 ShapeToString(dst_shape));
        }
        Dims b = BroadcastDims(s.extra_shape, dst_shape.size());
        for (size_t i = 0; i < b.size(); ++i) {
          if (b[i] != 1 && b[i] != dst_shape[i]) {
            return InvalidArgument("{}: post-op input {} {} does not broadcast to the output {}",
                                   node.Describe(), next, ShapeToString(s.extra_shape),
                                   ShapeToString(dst_shape));
          }
        }
      }
      ++next;
    }
    steps_.push_back(std::move(s));
  }
  return Status::OK();
}

void PostOpChain::PrependUnary(const PostOp& op) {
  ops_.insert(ops_.begin(), op);
  Step s;
  s.op = op;
  steps_.insert(steps_.begin(), s);
}

void PostOpChain::PrependBinary(const PostOp& op, int input, const Shape& shape, const void* constant) {
  ops_.insert(ops_.begin(), op);
  Step s;
  s.op = op;
  s.input = input;
  s.extra_shape = shape;
  s.constant = constant;
  steps_.insert(steps_.begin(), s);
}

std::optional<PostOpChain::Bias> PostOpChain::TakeLeadingBias(int64_t n) {
  if (steps_.empty() || dst_shape_.empty() || dst_shape_.back() != n) return std::nullopt;
  const Step& s = steps_.front();
  if (s.op.kind != PostOp::Kind::kAdd || s.staged_at != SIZE_MAX || NumElements(s.extra_shape) != n) return std::nullopt;
  const Dims b = BroadcastDims(s.extra_shape, dst_shape_.size());
  for (size_t i = 0; i + 1 < b.size(); ++i) {
    if (b[i] != 1) return std::nullopt;
  }
  Bias bias{s.input, s.constant, s.extra_shape};
  steps_.erase(steps_.begin());
  ops_.erase(ops_.begin());
  return bias;
}

bool PostOpChain::fusable() const {
  // oneDNN 2.6's JIT post-op injectors (brgemm matmul, AVX-512 conv) reuse the parameters of the
  // first eltwise entry for later entries of the same algorithm: such chains run standalone.
  std::vector<EltwiseSpec> seen;
  size_t entries = 0;
  for (const auto& s : steps_) {
    if (s.op.is_binary()) {
      ++entries;
      continue;
    }
    for (const EltwiseSpec& e : EltwiseSpecs(s.op)) {
      ++entries;
      for (const EltwiseSpec& p : seen) {
        if (p.alg == e.alg && (p.alpha != e.alpha || p.beta != e.beta)) return false;
      }
      seen.push_back(e);
    }
  }
  return entries <= 8;
}

bool PostOpChain::has_sum() const {
  for (const auto& s : steps_) {
    if (s.fused_sum) return true;
  }
  return false;
}

size_t PostOpChain::sum_input() const {
  for (const auto& s : steps_) {
    if (s.fused_sum) return static_cast<size_t>(s.input);
  }
  return 0;
}

bool PostOpChain::CanFlattenTo2D(const Shape& dst_shape) const {
  for (const auto& s : steps_) {
    if (!s.op.is_binary()) continue;
    if (s.extra_layout != Layout::kPlain) return false;
    Dims b = BroadcastDims(s.extra_shape, dst_shape.size());
    if (Shape(b.begin(), b.end()) == dst_shape) continue;
    for (size_t i = 0; i + 1 < b.size(); ++i) {
      if (b[i] != 1) return false;
    }
  }
  return true;
}

size_t PostOpChain::StageFullSizeExtras(Layout dst_layout) {
  if (dst_layout == Layout::kPlain) return 0;
  size_t bytes = 0;
  for (Step& s : steps_) {
    if (!s.op.is_binary() || s.op.kind == PostOp::Kind::kSum || s.constant != nullptr) continue;
    if (s.extra_layout != Layout::kPlain || s.extra_shape != dst_shape_ || dst_shape_.size() < 3) continue;
    auto md = MdFor(s.extra_shape, dst_layout);
    if (!md.ok()) continue;
    s.extra_layout = dst_layout;
    s.staged_at = bytes;
    s.staged_src = PlainMd(Dims(s.extra_shape.begin(), s.extra_shape.end()));
    s.staged_dst = *md;
    s.stage = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), s.staged_src, Engine(), s.staged_dst));
    bytes += (md->get_size() + 63) / 64 * 64;
  }
  return bytes;
}

void PostOpChain::StageExtras(const RunContext& ctx) const {
  for (const Step& s : steps_) {
    if (s.staged_at == SIZE_MAX) continue;
    memory src(s.staged_src, Engine(), const_cast<void*>(ctx.input(s.input).data));
    memory dst(s.staged_dst, Engine(), const_cast<void*>(ExtraData(ctx, s)));
    s.stage.execute(ThreadStream(), src, dst);
  }
}

memory::desc PostOpChain::ExtraMd(const Step& s, const Dims& dst_dims) const {
  if (s.staged_at != SIZE_MAX) return s.staged_dst;
  if (s.op.kind == PostOp::Kind::kSum) {
    auto md = MdFor(s.extra_shape, s.extra_layout);
    memory::desc m = md.ok() ? *md : PlainMd(dst_dims);
    if (m.dims() != dst_dims) m = m.reshape(dst_dims);
    return m;
  }
  Dims b = BroadcastDims(s.extra_shape, dst_shape_.size());
  if (dst_dims.size() != b.size()) {  // flattened [M, N] view of the output
    if (Shape(b.begin(), b.end()) == dst_shape_) return PlainMd(dst_dims);
    Dims d(dst_dims.size(), 1);
    d.back() = b.back();
    return PlainMd(d);
  }
  // A per-channel operand [N|1, C, 1, ...] has the same bytes in plain and channel-blocked order
  // when C is a multiple of 16. Saying so lets oneDNN keep its JIT kernels; a plain md next to a
  // blocked dst sends the whole primitive to the reference implementation (measured: LRASPP's head
  // convolutions at batch 8 went from ~21 s to milliseconds).
  // The block is this CPU's preferred one: the one blocked dsts have (AVX2 takes 8).
  const int block = PreferredBlock();
  bool per_channel = b.size() >= 3 && b.size() <= 5 && b[1] % block == 0;
  for (size_t i = 2; per_channel && i < b.size(); ++i) per_channel = b[i] == 1;
  if (per_channel) return memory::desc(b, memory::data_type::f32, BlockedTag(b.size(), block));
  return PlainMd(b);
}

void PostOpChain::AppendFused(dnnl::post_ops& po, const Dims& dst_dims) const {
  for (const auto& s : steps_) {
    if (s.fused_sum) {
      po.append_sum(1.f);
    } else if (s.op.is_binary()) {
      po.append_binary(BinaryAlg(s.op.kind), ExtraMd(s, dst_dims));
    } else {
      AppendEltwise(po, s.op);
    }
  }
}

void PostOpChain::AddFusedArgs(const RunContext& ctx, ArgMap& args, const Dims& dst_dims) const {
  int idx = 0;
  for (const auto& s : steps_) {
    if (s.fused_sum) {
      ++idx;
    } else if (s.op.is_binary()) {
      args.insert({DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) | DNNL_ARG_SRC_1,
                   memory(ExtraMd(s, dst_dims), Engine(), const_cast<void*>(ExtraData(ctx, s)))});
      ++idx;
    } else {
      idx += static_cast<int>(EltwiseSpecs(s.op).size());
    }
  }
}

Status PostOpChain::CopySumInput(const RunContext& ctx, const memory& dst, void* scratch) const {
  for (const auto& s : steps_) {
    if (!s.fused_sum) continue;
    const void* src = ctx.input(s.input).data;
    if (src == dst.get_data_handle()) return Status::OK();
    memory::desc dmd = dst.get_desc();
    memory::desc smd = ExtraMd(s, dmd.dims());
    if (smd == dmd) {
      std::memcpy(dst.get_data_handle(), src, dmd.get_size());
      return Status::OK();
    }
    memory sm(smd, Engine(), const_cast<void*>(src));
    dnnl::reorder::primitive_desc rpd(Engine(), smd, Engine(), dmd);
    dnnl::reorder(rpd).execute(ThreadStream(), sm, const_cast<memory&>(dst));
    (void)scratch;
    return Status::OK();
  }
  return Status::OK();
}

size_t PostOpChain::PrepareStandalone(const memory::desc& dst_md) {
  dst_md_ = dst_md;
  standalone_.clear();
  standalone_src1_.clear();
  standalone_scratch_.clear();
  standalone_impls_.clear();
  size_t scratch = 0;
  Dims dims = dst_md.dims();
  for (const auto& s : steps_) {
    if (s.op.is_binary()) {
      memory::desc src1 = ExtraMd(s, dims);
      dnnl::binary::desc d(BinaryAlg(s.op.kind == PostOp::Kind::kSum ? PostOp::Kind::kAdd : s.op.kind),
                           dst_md, src1, dst_md);
      dnnl::binary::primitive_desc pd(d, ScratchAttr(), Engine());
      scratch = std::max(scratch, pd.scratchpad_desc().get_size());
      standalone_.push_back(dnnl::binary(pd));
      standalone_impls_.push_back(pd.impl_info_str());
      standalone_src1_.push_back(src1);
      standalone_scratch_.push_back(pd.scratchpad_desc());
    } else {
      for (const auto& e : EltwiseSpecs(s.op)) {
        dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, e.alg, dst_md, e.alpha, e.beta);
        dnnl::eltwise_forward::primitive_desc pd(d, ScratchAttr(), Engine());
        scratch = std::max(scratch, pd.scratchpad_desc().get_size());
        standalone_.push_back(dnnl::eltwise_forward(pd));
        standalone_impls_.push_back(pd.impl_info_str());
        standalone_src1_.push_back(memory::desc());
        standalone_scratch_.push_back(pd.scratchpad_desc());
      }
    }
  }
  return scratch;
}

void PostOpChain::RunStandalone(const RunContext& ctx, const memory& dst, void* scratch) const {
  size_t k = 0;
  for (const auto& s : steps_) {
    size_t n = s.op.is_binary() ? 1 : EltwiseSpecs(s.op).size();
    for (size_t j = 0; j < n; ++j, ++k) {
      const dnnl::primitive& p = standalone_[k];
      const memory::desc& sp_md = standalone_scratch_[k];
      ArgMap args;
      if (sp_md.get_size() > 0) args.insert({DNNL_ARG_SCRATCHPAD, memory(sp_md, Engine(), scratch)});
      if (s.op.is_binary()) {
        args.insert({DNNL_ARG_SRC_0, dst});
        args.insert({DNNL_ARG_SRC_1, memory(standalone_src1_[k], Engine(), const_cast<void*>(ExtraData(ctx, s)))});
        args.insert({DNNL_ARG_DST, dst});
      } else {
        args.insert({DNNL_ARG_SRC, dst});
        args.insert({DNNL_ARG_DST, dst});
      }
      p.execute(ThreadStream(), args);
    }
  }
}

}  // namespace gpuhive::cpu::onednn
