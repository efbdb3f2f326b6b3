#include "viewer_window.h"

#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QDockWidget>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QFormLayout>
#include <QLabel>
#include <QLibrary>
#include <QListWidget>
#include <QMenuBar>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QStatusBar>
#include <QThread>
#include <QVBoxLayout>

#include <cstdio>

namespace {

constexpr int kCloseTimeoutMs = 5000;  // a worker ignoring quit cannot hold the window forever

// One per connection the viewer makes on a watched worker; the library
// destroys it. QPointer: events may outlive a torn-down viewer.
struct WatchCtx {
    QPointer<Viewer> viewer;
    worker *w;
};
void free_watch_ctx(void *p) {
    auto *c = static_cast<WatchCtx *>(p);
    // Freed without FINISHED, a worker was never started (e.g. worker_start
    // gave WORKER_EBUSY): stop waiting for it. The map is the GUI thread's.
    if (QThread::currentThread() == qApp->thread() && c->viewer) c->viewer->unwatch(c->w);
    delete c;
}

const char *event_name(worker_event_type t) {
    static const char *names[] = {"started", "yielded", "returned", "errored",
                                  "warned", "progress", "paused", "resumed",
                                  "aborted", "finished", "custom", "output"};
    return (int)t >= 0 && (int)t <= (int)WORKER_EV_OUTPUT ? names[t] : "?";
}

QString from_c(const char *s) { return s ? QString::fromUtf8(s) : QString(); }


}  // namespace

Viewer::Viewer(bool headless, QWidget *parent)
    : QMainWindow(parent), handle_(viewer_handle_new(this)), headless_(headless),
      canvas_(new Canvas(this)) {
    setWindowTitle("qtworker viewer");
    setCentralWidget(canvas_);
    setDockNestingEnabled(true);
    canvas_->on_hover = [this](const QString &s) { hover_->setText(s); };

    QMenu *file = menuBar()->addMenu("&File");
    file->addAction("&Quit", QKeySequence::Quit, this, [this] { close(); });
    view_menu_ = menuBar()->addMenu("&View");
    QAction *grid = view_menu_->addAction("&Grid", QKeySequence("G"), this,
                                          [this](bool on) { canvas_->set_grid(on); });
    grid->setCheckable(true);
    grid->setChecked(canvas_->grid());
    view_menu_->addAction("&Fit", QKeySequence("F"), this, [this] { canvas_->fit(); });
    view_menu_->addSeparator();
    plugins_menu_ = menuBar()->addMenu("&Plugins");

    build_layers_dock();
    // Plugin docks take the full height on the right; the Log spans the
    // rest of the bottom (its lines are long).
    setCorner(Qt::BottomRightCorner, Qt::RightDockWidgetArea);
    log_ = new LogDock(this);
    addDockWidget(Qt::BottomDockWidgetArea, log_);
    resizeDocks({log_}, {150}, Qt::Vertical);  // the canvas gets the room
    view_menu_->addAction(log_->toggleViewAction());
    build_status_bar();

    // Repaint rate, event-loop lag (the GUI staying smooth) and live workers.
    lag_probe_.setTimerType(Qt::PreciseTimer);
    connect(&lag_probe_, &QTimer::timeout, this, [this] {
        lag_max_ms_ = std::max(lag_max_ms_, lag_clock_.restart() - 10.0);
    });
    lag_clock_.start();
    lag_probe_.start(10);
    connect(&stats_, &QTimer::timeout, this, [this] {
        fps_ = canvas_->take_paint_count();
        lag_shown_ = std::max(0.0, lag_max_ms_);
        lag_max_ms_ = 0;
        show_stats();
    });
    stats_.start(1000);
    connect(&pending_poll_, &QTimer::timeout, this, [this] { show_pending(); });
    pending_poll_.start(250);
    connect(&close_poll_, &QTimer::timeout, this, [this] {
        bool joined = worker_live_count() == 0 && watched_.empty();
        if (joined || close_clock_.elapsed() > kCloseTimeoutMs) finish_closing();
    });
    resize(1200, 760);
}

Viewer::~Viewer() {
    // Plugins' user_data first (connections, then docks), while widgets exist.
    tearing_down_ = true;
    for (Plugin &p : plugins_)  // their workers have ended: this frees the scopes
        if (p.scope) worker_scope_close(p.scope, 0);
    for (auto &kv : conns_) QObject::disconnect(kv.second.qt);
    auto conns = std::move(conns_);
    for (auto &kv : conns)
        if (kv.second.destroy) kv.second.destroy(kv.second.ud);
    for (auto &kv : items_)
        if (kv.second.kind == Kind::Dock && kv.second.destroy) kv.second.destroy(kv.second.ud);
    viewer_handle_free(handle_);
}

void Viewer::build_layers_dock() {
    auto *dock = layers_dock_ = new QDockWidget("Layers", this);
    dock->setObjectName("Layers");
    auto *body = new QWidget;
    auto *lay = new QVBoxLayout(body);
    layer_list_ = new QListWidget;
    lay->addWidget(layer_list_, 1);
    auto *form = new QFormLayout;
    lo_ = new QDoubleSpinBox;
    hi_ = new QDoubleSpinBox;
    for (QDoubleSpinBox *b : {lo_, hi_}) {
        b->setRange(-1e9, 1e9);
        b->setDecimals(4);
        b->setSingleStep(0.01);
        connect(b, &QDoubleSpinBox::valueChanged, this, [this] {
            if (!current_) return;
            current_->lo = lo_->value();
            current_->hi = hi_->value();
            canvas_->changed();
        });
    }
    form->addRow("contrast min", lo_);
    form->addRow("contrast max", hi_);
    lay->addLayout(form);
    auto *autob = new QPushButton("Auto contrast");
    connect(autob, &QPushButton::clicked, this, [this] {
        if (!current_) return;
        auto r = current_->data_range();
        lo_->setValue(r.first);
        hi_->setValue(r.second > r.first ? r.second : r.first + 1);
    });
    lay->addWidget(autob);
    layer_info_ = new QLabel;
    lay->addWidget(layer_info_);
    dock->setWidget(body);
    addDockWidget(Qt::LeftDockWidgetArea, dock);
    view_menu_->addAction(dock->toggleViewAction());

    connect(layer_list_, &QListWidget::currentRowChanged, this, [this](int row) {
        auto &ls = canvas_->layers();
        select_layer(row >= 0 && row < (int)ls.size() ? ls[ls.size() - 1 - row].get() : nullptr);
    });
    connect(layer_list_, &QListWidget::itemChanged, this, [this](QListWidgetItem *it) {
        if (Layer *l = canvas_->find(it->text())) l->visible = it->checkState() == Qt::Checked;
        canvas_->fit();
    });
}

void Viewer::show_stats() {
    perf_->setText(QString("%1 fps | loop lag %2 ms | %3 running")
                       .arg(fps_).arg(lag_shown_, 0, 'f', 0).arg(worker_live_count()));
}

// Per watched worker: the bytes its stream holds (frames yielded with
// worker_yield_sized and not yet shown), e.g. "12.0 MiB pending".
void Viewer::show_pending() {
    for (auto &kv : watched_) {
        size_t bytes = 0;
        if (!kv.second.pending || worker_backlog(kv.first, nullptr, &bytes) != WORKER_OK) continue;
        kv.second.pending->setText(bytes >= (1u << 20)
                                       ? QString("%1 MiB pending").arg(bytes / 1048576.0, 0, 'f', 1)
                                       : QString("%1 KiB pending").arg(bytes / 1024.0, 0, 'f', 0));
    }
}

void Viewer::build_status_bar() {
    hover_ = new QLabel;
    perf_ = new QLabel;
    statusBar()->addWidget(hover_, 1);
    statusBar()->addPermanentWidget(perf_);
}

void Viewer::rebuild_layer_list() {
    QSignalBlocker block(layer_list_);
    layer_list_->clear();
    auto &ls = canvas_->layers();
    for (auto it = ls.rbegin(); it != ls.rend(); ++it) {  // top first, like napari
        auto *item = new QListWidgetItem((*it)->name, layer_list_);
        item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
        item->setCheckState((*it)->visible ? Qt::Checked : Qt::Unchecked);
        if (it->get() == current_) layer_list_->setCurrentItem(item);
    }
}

void Viewer::select_layer(Layer *l) {
    current_ = l;
    QSignalBlocker b1(lo_), b2(hi_);
    if (!l) {
        layer_info_->clear();
        return;
    }
    lo_->setValue(l->lo);
    hi_->setValue(l->hi);
    layer_info_->setText(QString("%1: %2 x %3 %4").arg(l->name).arg(l->width).arg(l->height)
                             .arg(l->type == VIEWER_F32 ? "float32" : "uint8"));
}

// ------------------------------------------------------------------ plugins

int Viewer::load_plugin(const QString &path) {
    QString name = QFileInfo(path).completeBaseName();
    auto *lib = new QLibrary(path, this);  // never unloaded: workers may still run its code
    auto init = lib->load() ? (viewer_plugin_init_fn)lib->resolve("viewer_plugin_init") : nullptr;
    if (!init) {
        std::fprintf(stderr, "viewer: plugin %s not loaded: %s\n", qPrintable(path),
                     qPrintable(lib->errorString()));
        return VIEWER_EINVAL;
    }
    // Each plugin gets a scope (viewer_dock_scope) for the workers its docks own.
    worker_scope *scope = worker_scope_new(qPrintable(name));
    if (!scope) return VIEWER_ENOMEM;
    int index = (int)plugins_.size();
    plugins_.push_back(Plugin{name, scope, nullptr});
    current_plugin_ = index;
    int rc = init(handle_);
    current_plugin_ = -1;
    plugins_[index].close_action = plugins_menu_->addAction(
        "Close " + name, this, [this, index] { close_plugin_at(index); });
    if (rc < 0) {
        std::fprintf(stderr, "viewer: plugin %s: init failed (%d): %s\n", qPrintable(name), rc,
                     viewer_strerror(rc));
        log(QString("plugin %1: init failed (%2)").arg(name).arg(rc), LogDock::Kind::Error);
    } else {
        log(QString("plugin %1: loaded").arg(name));
    }
    return rc;
}

int Viewer::load_plugin_dir(const QString &dir) {
    int n = 0;
    for (const QFileInfo &f : QDir(dir).entryInfoList({"*.so"}, QDir::Files, QDir::Name))
        if (load_plugin(f.absoluteFilePath()) >= 0) n++;
    return n;
}

// ------------------------------------------------------------------- layers

int Viewer::set_layer(const char *name, const vimage *img) {
    if (!name || !*name || !img || !img->pixels || img->width <= 0 || img->height <= 0 ||
        (img->type != VIEWER_U8 && img->type != VIEWER_F32) ||
        (long long)img->width * img->height > (1LL << 28))
        return VIEWER_EINVAL;
    QString n = QString::fromUtf8(name);
    Layer *l = canvas_->find(n);
    bool added = !l;
    if (added) l = canvas_->add(n);
    l->assign(img);
    if (added) {
        auto r = img->type == VIEWER_F32 ? l->data_range() : std::make_pair(0.0, 255.0);
        l->lo = r.first;
        l->hi = r.second > r.first ? r.second : r.first + 1;
        current_ = l;
        rebuild_layer_list();
        select_layer(l);
    }
    canvas_->changed();
    return added ? VIEWER_ADDED : VIEWER_OK;
}

int Viewer::set_contrast(const char *name, double lo, double hi) {
    Layer *l = name ? canvas_->find(QString::fromUtf8(name)) : nullptr;
    if (!l || !(hi > lo)) return VIEWER_EINVAL;
    l->lo = lo;
    l->hi = hi;
    if (l == current_) select_layer(l);
    canvas_->changed();
    return VIEWER_OK;
}

int Viewer::get_contrast(const char *name, double *lo, double *hi) const {
    Layer *l = name ? canvas_->find(QString::fromUtf8(name)) : nullptr;
    if (!l || !lo || !hi) return VIEWER_EINVAL;
    *lo = l->lo;
    *hi = l->hi;
    return VIEWER_OK;
}

// ------------------------------------------------------------------ workers

int Viewer::watch(worker *w) {
    const char *name = worker_name(w);
    if (!name) return VIEWER_EINVAL;
    static const worker_event_type types[] = {
        WORKER_EV_STARTED, WORKER_EV_PROGRESS, WORKER_EV_WARNED, WORKER_EV_ERRORED,
        WORKER_EV_RETURNED, WORKER_EV_ABORTED, WORKER_EV_PAUSED, WORKER_EV_RESUMED,
        WORKER_EV_FINISHED, WORKER_EV_OUTPUT};
    for (worker_event_type t : types) {
        long id = worker_connect(w, t, &Viewer::on_worker_event, new WatchCtx{this, w},
                                 free_watch_ctx);
        if (id < 0) return id == WORKER_ESTATE ? VIEWER_ESTATE : VIEWER_EINVAL;
    }
    watched_[w].name = QString::fromUtf8(name);
    return VIEWER_OK;
}

void Viewer::on_worker_event(worker_event *ev, void *ctx) {
    if (Viewer *v = static_cast<WatchCtx *>(ctx)->viewer) v->handle_worker_event(ev);
}

void Viewer::handle_worker_event(worker_event *ev) {
    auto it = watched_.find(ev->source);
    if (it == watched_.end()) return;
    Watched &w = it->second;
    QString line = w.name + ": " + event_name(ev->type);
    LogDock::Kind kind = LogDock::Kind::Event;
    switch (ev->type) {
    case WORKER_EV_STARTED: {
        w.box = new QWidget;
        auto *lay = new QHBoxLayout(w.box);
        lay->setContentsMargins(0, 0, 0, 0);
        lay->addWidget(new QLabel(w.name));
        w.bar = new QProgressBar;
        w.bar->setRange(0, 0);  // busy until a PROGRESS with a total arrives
        w.bar->setMaximumWidth(140);
        w.bar->setMaximumHeight(14);
        lay->addWidget(w.bar);
        w.pending = new QLabel("0 KiB pending");
        lay->addWidget(w.pending);
        statusBar()->addPermanentWidget(w.box);
        break;
    }
    case WORKER_EV_PROGRESS:
        progress_[w.name] = {ev->done, ev->total};
        if (w.bar) {
            w.bar->setRange(0, (int)ev->total);
            w.bar->setValue((int)std::min(ev->done, ev->total ? ev->total : ev->done));
            if (ev->message) w.bar->setToolTip(from_c(ev->message));
        }
        return;  // too many to log
    case WORKER_EV_OUTPUT:  // code 2: stderr
        line = w.name + (ev->code == 2 ? " ! " : " > ") + from_c(ev->message);
        kind = ev->code == 2 ? LogDock::Kind::Error : LogDock::Kind::Output;
        break;
    case WORKER_EV_ERRORED:
        kind = LogDock::Kind::Error;
        line += QString(" (%1): %2").arg(ev->code).arg(from_c(ev->message));
        std::fprintf(stderr, "viewer: worker '%s' failed (%d): %s\n", qPrintable(w.name),
                     ev->code, ev->message ? ev->message : "");
        statusBar()->showMessage(line, 10000);
        break;
    case WORKER_EV_WARNED:
        kind = LogDock::Kind::Warning;
        line += ": " + from_c(ev->message);
        statusBar()->showMessage(line, 5000);
        break;
    case WORKER_EV_ABORTED:  // a plain quit has no code; a timeout says why
        if (!ev->code) break;
        kind = LogDock::Kind::Warning;
        line += QString(" (%1): %2").arg(ev->code).arg(from_c(ev->message));
        statusBar()->showMessage(line, 5000);
        break;
    default:
        break;
    }
    log(line, kind);
    if (ev->type == WORKER_EV_FINISHED) {
        unwatch(ev->source);
        show_stats();
    }
}

void Viewer::unwatch(worker *w) {
    auto it = watched_.find(w);
    if (it == watched_.end()) return;
    delete it->second.box;
    watched_.erase(it);
}

std::pair<long long, long long> Viewer::last_progress(const QString &worker) const {
    auto it = progress_.find(worker);
    return it == progress_.end() ? std::make_pair(0LL, 0LL) : it->second;
}

void Viewer::log(const QString &line, LogDock::Kind kind) { log_->append(kind, line); }

// ------------------------------------------------------------------ closing

bool Viewer::confirm_quit(int live) {
    std::vector<worker *> list(live > 0 ? live : 1);
    int n = worker_list(list.data(), (int)list.size());
    QStringList names;
    for (int i = 0; i < n; i++) {
        names << QString::fromUtf8(worker_name(list[i]));
        worker_unref(list[i]);
    }
    if (n == 0) return true;  // finished while we looked
    QString text = QString("%1 task%2 still running:\n    %3\n\nQuit anyway?")
                       .arg(n).arg(n == 1 ? " is" : "s are").arg(names.join("\n    "));
    return QMessageBox::question(this, "Quit?", text, QMessageBox::Yes | QMessageBox::No,
                                 QMessageBox::No) == QMessageBox::Yes;
}

void Viewer::closeEvent(QCloseEvent *e) {
    if (!closing_ && worker_live_count() == 0 && watched_.empty()) close_done_ = true;
    if (close_done_) {
        e->accept();
        return;
    }
    e->ignore();  // closes for real once every worker has finished
    if (closing_) return;
    if (!headless_ && !confirm_quit(worker_live_count())) return;
    closing_ = true;
    log(QString("closing: asked %1 worker(s) to quit").arg(worker_quit_all()));
    close_clock_.start();
    close_poll_.start(10);
}

void Viewer::finish_closing() {
    close_poll_.stop();
    for (auto &kv : watched_)
        std::fprintf(stderr, "viewer: worker '%s' did not finish within %d ms\n",
                     qPrintable(kv.second.name), kCloseTimeoutMs);
    if (closing_) log(QString("closing: %1 worker(s) still live").arg(worker_live_count()));
    close_done_ = true;
    close();
}
