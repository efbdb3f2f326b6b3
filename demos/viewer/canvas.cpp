#include "canvas.h"

#include <QMouseEvent>
#include <QPaintEngine>
#include <QPainter>
#include <QWheelEvent>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace {
constexpr double kGap = 16;          // scene pixels between grid cells
constexpr double kLabel = 18;        // widget pixels reserved for a cell title
const QColor kBackground(38, 41, 48);
}

void Layer::assign(const vimage *img) {
    size_t px = img->type == VIEWER_F32 ? sizeof(float) : 1;
    width = img->width;
    height = img->height;
    type = img->type;
    bytes.resize((size_t)width * (size_t)height * px);
    std::memcpy(bytes.data(), img->pixels, bytes.size());
    version++;
}

double Layer::value(int x, int y) const {
    size_t i = (size_t)y * (size_t)width + (size_t)x;
    if (type == VIEWER_U8) return bytes[i];
    float f;
    std::memcpy(&f, bytes.data() + i * sizeof f, sizeof f);
    return f;
}

std::pair<double, double> Layer::data_range() const {
    double mn = std::numeric_limits<double>::infinity(), mx = -mn;
    size_t n = (size_t)width * (size_t)height;
    if (type == VIEWER_U8) {
        for (size_t i = 0; i < n; i++) {
            mn = std::min(mn, (double)bytes[i]);
            mx = std::max(mx, (double)bytes[i]);
        }
    } else {
        const float *f = reinterpret_cast<const float *>(bytes.data());
        for (size_t i = 0; i < n; i++) {
            if (std::isnan(f[i])) continue;
            mn = std::min(mn, (double)f[i]);
            mx = std::max(mx, (double)f[i]);
        }
    }
    if (mn > mx) return {0, 1};  // empty or all NaN
    return {mn, mx};
}

const QImage &Layer::rendered() {
    if (image_version_ == version && image_lo_ == lo && image_hi_ == hi) return image_;
    if (image_.width() != width || image_.height() != height)
        image_ = QImage(width, height, QImage::Format_Grayscale8);
    double k = hi > lo ? 255.0 / (hi - lo) : 0;
    auto gray = [&](double v) -> uchar {
        double t = (v - lo) * k;
        if (!(t > 0)) return 0;  // also NaN
        return t >= 255 ? 255 : (uchar)(t + 0.5);
    };
    if (type == VIEWER_U8) {
        uchar lut[256];
        for (int i = 0; i < 256; i++) lut[i] = gray(i);
        for (int y = 0; y < height; y++) {
            const uchar *src = bytes.data() + (size_t)y * width;
            uchar *dst = image_.scanLine(y);
            for (int x = 0; x < width; x++) dst[x] = lut[src[x]];
        }
    } else {
        const float *f = reinterpret_cast<const float *>(bytes.data());
        for (int y = 0; y < height; y++) {
            const float *src = f + (size_t)y * width;
            uchar *dst = image_.scanLine(y);
            for (int x = 0; x < width; x++) dst[x] = gray(src[x]);
        }
    }
    image_version_ = version;
    image_lo_ = lo;
    image_hi_ = hi;
    return image_;
}

Canvas::Canvas(QWidget *parent) : QWidget(parent) {
    setMouseTracking(true);
    setMinimumSize(200, 150);
    setFocusPolicy(Qt::StrongFocus);
    repaint_.setSingleShot(true);
    repaint_.setInterval(16);  // ~60 Hz, however often layers change
    QObject::connect(&repaint_, &QTimer::timeout, this, [this] { update(); });
}

Layer *Canvas::find(const QString &name) const {
    for (auto &l : layers_)
        if (l->name == name) return l.get();
    return nullptr;
}

Layer *Canvas::add(const QString &name) {
    layers_.push_back(std::make_unique<Layer>());
    layers_.back()->name = name;
    return layers_.back().get();
}

void Canvas::changed() {
    if (!repaint_.isActive()) repaint_.start();
}

void Canvas::set_grid(bool on) {
    grid_ = on;
    fit();
}

void Canvas::fit() {
    auto_fit_ = true;
    update();
}

int Canvas::take_paint_count() {
    int n = paints_;
    paints_ = 0;
    return n;
}

std::vector<Canvas::Cell> Canvas::layout() const {
    std::vector<Layer *> shown;  // top first, as in the layer list
    for (auto it = layers_.rbegin(); it != layers_.rend(); ++it)
        if ((*it)->visible && (*it)->width > 0) shown.push_back(it->get());
    std::vector<Cell> cells;
    if (!grid_) {
        // Stacked: bottom drawn first, all at the origin.
        for (auto it = shown.rbegin(); it != shown.rend(); ++it)
            cells.push_back({*it, QRectF(0, 0, (*it)->width, (*it)->height)});
        return cells;
    }
    int n = (int)shown.size();
    int cols = std::max(1, (int)std::ceil(std::sqrt((double)n)));
    double cw = 0, ch = 0;
    for (Layer *l : shown) {
        cw = std::max(cw, (double)l->width);
        ch = std::max(ch, (double)l->height);
    }
    double gap_y = kGap + 0.08 * ch;  // room for the titles at any usual zoom
    for (int i = 0; i < n; i++) {
        Layer *l = shown[i];
        double x = (i % cols) * (cw + kGap) + (cw - l->width) / 2;
        double y = (i / cols) * (ch + gap_y) + (ch - l->height) / 2;
        cells.push_back({l, QRectF(x, y, l->width, l->height)});
    }
    return cells;
}

QRectF Canvas::bounds(const std::vector<Cell> &cells) const {
    QRectF r;
    for (const Cell &c : cells) r = r.united(c.rect);
    return r;
}

QPointF Canvas::to_scene(QPointF p) const { return (p - offset_) / scale_; }

// The backing store's pixel format, so the final drawImage is a plain blit.
static QImage::Format target_format(QPainter &p) {
    QPaintDevice *d = p.paintEngine() ? p.paintEngine()->paintDevice() : nullptr;
    QImage::Format f = d && d->devType() == QInternal::Image ? static_cast<QImage *>(d)->format()
                                                            : QImage::Format_RGB32;
    bool argb32 = f == QImage::Format_RGB32 || f == QImage::Format_ARGB32 ||
                  f == QImage::Format_ARGB32_Premultiplied;
    return argb32 ? f : QImage::Format_RGB32;
}

// Nearest-neighbour scaling of a gray image into the 32-bit frame, clipped.
// Done here rather than by QPainter::drawImage, which splits large scaled
// blits across Qt's GUI thread pool and waits for it: on a busy 2-core
// machine (a 1 kHz camera thread) that stalled the GUI thread.
static void blit_scaled(QImage &frame, const QImage &gray, const QRectF &target) {
    QRect t = target.toAlignedRect().intersected(frame.rect());
    if (t.isEmpty()) return;
    double sx = gray.width() / target.width(), sy = gray.height() / target.height();
    std::vector<int> cols(t.width());
    for (int x = 0; x < t.width(); x++)
        cols[x] = std::clamp((int)((t.left() + x + 0.5 - target.left()) * sx), 0, gray.width() - 1);
    for (int y = t.top(); y <= t.bottom(); y++) {
        int row = std::clamp((int)((y + 0.5 - target.top()) * sy), 0, gray.height() - 1);
        const uchar *src = gray.constScanLine(row);
        auto *dst = reinterpret_cast<quint32 *>(frame.scanLine(y)) + t.left();
        for (int x = 0; x < t.width(); x++) dst[x] = 0xff000000u | src[cols[x]] * 0x010101u;
    }
}

void Canvas::paintEvent(QPaintEvent *) {
    paints_++;
    QPainter p(this);
    auto cells = layout();
    if (cells.empty()) {
        p.fillRect(rect(), kBackground);
        p.setPen(QColor(150, 150, 160));
        p.drawText(rect(), Qt::AlignCenter, "no layers yet: plugins add them");
        return;
    }
    if (auto_fit_) {
        QRectF b = bounds(cells);
        double top = grid_ ? kLabel : 0;
        QRectF room = QRectF(rect()).adjusted(8, 8 + top, -8, -8);
        scale_ = std::min(room.width() / b.width(), room.height() / b.height());
        offset_ = room.center() - b.center() * scale_;
    }
    // Nearest-neighbour, as napari's default interpolation: the pixels as
    // they are.
    QImage::Format fmt = target_format(p);
    if (frame_.size() != size() || frame_.format() != fmt) frame_ = QImage(size(), fmt);
    frame_.fill(kBackground);
    std::vector<QRectF> targets;
    for (const Cell &c : cells) {
        targets.emplace_back(offset_ + c.rect.topLeft() * scale_, c.rect.size() * scale_);
        blit_scaled(frame_, c.layer->rendered(), targets.back());
    }
    p.setCompositionMode(QPainter::CompositionMode_Source);
    p.drawImage(0, 0, frame_);
    if (!grid_) return;
    p.setCompositionMode(QPainter::CompositionMode_SourceOver);
    p.setPen(QColor(210, 210, 220));
    for (size_t i = 0; i < cells.size(); i++) {
        const QRectF &t = targets[i];
        p.drawText(QRectF(t.left(), t.top() - kLabel, t.width(), kLabel),
                   Qt::AlignLeft | Qt::AlignVCenter, cells[i].layer->name);
    }
}

void Canvas::wheelEvent(QWheelEvent *e) {
    // Zoom about the cursor: the scene point under it stays put.
    QPointF at = e->position();
    QPointF scene = to_scene(at);
    scale_ *= std::pow(1.0015, e->angleDelta().y());
    scale_ = std::clamp(scale_, 0.02, 64.0);
    offset_ = at - scene * scale_;
    auto_fit_ = false;
    update();
}

void Canvas::mousePressEvent(QMouseEvent *e) { drag_from_ = e->position(); }

void Canvas::mouseMoveEvent(QMouseEvent *e) {
    if (e->buttons() & Qt::LeftButton) {
        offset_ += e->position() - drag_from_;
        drag_from_ = e->position();
        auto_fit_ = false;
        update();
    }
    hover(e->position());
}

void Canvas::mouseDoubleClickEvent(QMouseEvent *) { fit(); }

void Canvas::resizeEvent(QResizeEvent *) {
    if (auto_fit_) update();
}

void Canvas::hover(QPointF pos) {
    if (!on_hover) return;
    QPointF s = to_scene(pos);
    auto cells = layout();
    for (auto it = cells.rbegin(); it != cells.rend(); ++it) {  // topmost first
        if (!it->rect.contains(s)) continue;
        int x = (int)(s.x() - it->rect.left()), y = (int)(s.y() - it->rect.top());
        if (x >= it->layer->width || y >= it->layer->height) continue;
        on_hover(QString("%1 [%2, %3] = %4")
                     .arg(it->layer->name).arg(x).arg(y).arg(it->layer->value(x, y), 0, 'g', 5));
        return;
    }
    on_hover(QString());
}
